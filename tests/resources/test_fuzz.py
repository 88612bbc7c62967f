"""Schemathesis against our own OpenAPI document: generated requests get no 500 and answers match the document.

Every operation gets a small example budget here (MEDSIGHT_FUZZ_EXAMPLES, default 5), so it runs with the
rest of the suite on both databases; `make fuzz` runs the same test with a larger one. The requests carry an
admin's login (a JWT), so the guarded operations are reached past authentication.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from constants import Role

FUZZ_EXAMPLES = int(os.environ.get("MEDSIGHT_FUZZ_EXAMPLES", "5"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture
def fuzzed_app(app):
    # The fuzzer signs in and registers far more often than a person would: the limits are not under test here.
    limits = ("AUTH_RATE_LIMIT", "AUTH_ACCOUNT_RATE_LIMIT", "UPLOAD_RATE_LIMIT")
    saved = {name: app.config[name] for name in limits}
    app.config.update(dict.fromkeys(limits, "100000 per minute"))
    yield app
    app.config.update(saved)


def _fuzz(operation, headers: dict[str, str]) -> int:
    """Send FUZZ_EXAMPLES generated requests to one operation, checking each answer; how many were sent."""
    sent = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        derandomize=True,
        database=None,
    )
    def exercise(case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=CHECKS)

    exercise()
    return sent


def test_generated_requests_get_no_server_error_and_documented_answers(fuzzed_app, make_account):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    sent = 0
    for operation in operations:
        # A fresh admin per operation: logging out, deleting one's own account... must not starve the next one.
        headers = {"Authorization": f"Bearer {make_account(role=Role.ADMIN).access_token}"}
        try:
            sent += _fuzz(operation, headers)
        except Exception as failure:  # every operation is tried; all failures are reported together
            failures.append(f"{operation.label}: {failure}")
    print(f"schemathesis: {sent} requests over {len(operations)} operations, {len(failures)} failing")
    assert not failures, "\n\n".join(failures)
