"""Request ids and JSON logs: one line per request on stderr, without personal data; every error names its request."""

from __future__ import annotations

import json

import pytest

from tests.resources.helpers import assert_error
from tests.support.images import sample_image


def log_lines(captured: str) -> list[dict]:
    lines = []
    for line in captured.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def request_lines(captured: str) -> list[dict]:
    return [line for line in log_lines(captured) if line.get("logger") == "medsight.request"]


def test_a_well_formed_client_request_id_is_kept_and_returned(client):
    response = client.get("/health", headers={"X-Request-ID": "client-chosen-id-0001"})
    assert response.headers["X-Request-ID"] == "client-chosen-id-0001"


@pytest.mark.parametrize("offered", ["short", "x" * 200, "has space in it", "line\\nbreak-forged", "ünïcode-request"])
def test_a_malformed_request_id_is_replaced(client, offered):
    response = client.get("/health", headers={"X-Request-ID": offered})
    assert response.headers["X-Request-ID"] != offered
    assert len(response.headers["X-Request-ID"]) == 32


def test_every_error_body_carries_the_request_id(client):
    response = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "trace-me-please-42"})
    error = assert_error(response, 404, "not_found")
    assert error["request_id"] == "trace-me-please-42"


def test_one_json_line_per_request_with_its_fields(client, patient, capsys):
    capsys.readouterr()
    client.get("/api/v1/predictions?label=melanoma&email=secret@example.org", headers=patient.headers)
    lines = request_lines(capsys.readouterr().err)
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET" and line["route"] == "/api/v1/predictions" and line["status"] == 200
    assert line["user_id"] == patient.id
    assert isinstance(line["duration_ms"], float) and line["level"] == "info" and line["time"].endswith("+00:00")
    assert len(line["request_id"]) == 32
    assert "melanoma" not in json.dumps(line) and "secret@example.org" not in json.dumps(line)


def test_logs_never_hold_emails_passwords_tokens_or_file_names(client, make_account, upload, capsys):
    capsys.readouterr()
    account = make_account("log-watch@example.org", password="a-secret-pass-77")
    upload(account, "chest_xray", sample_image("chest_xray"), filename="jane-doe-xray.jpeg")
    client.post("/api/v1/auth/login", json={"email": "log-watch@example.org", "password": "wrong-pass-99"})
    captured = capsys.readouterr().err
    assert request_lines(captured), captured[:500]
    for secret in ("log-watch@example.org", "a-secret-pass-77", "wrong-pass-99", account.access_token, "jane-doe"):
        assert secret not in captured


def test_a_500_is_logged_once_with_its_traceback_and_request_id(build_app, capsys):
    app = build_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    capsys.readouterr()
    response = app.test_client().get("/boom", headers={"X-Request-ID": "failing-request-7"})
    error = assert_error(response, 500, "internal_error")
    assert error["request_id"] == "failing-request-7" and "kaboom" not in response.get_data(as_text=True)
    lines = log_lines(capsys.readouterr().err)
    with_traceback = [line for line in lines if "exception" in line]
    assert len(with_traceback) == 1
    assert with_traceback[0]["request_id"] == "failing-request-7" and "kaboom" in with_traceback[0]["exception"]
    assert with_traceback[0]["level"] == "error"
    assert [line["status"] for line in lines if line.get("logger") == "medsight.request"] == [500]
