"""Hostile but well-formed-looking input gets a 4xx in our shape, never a 500, on both databases alike."""

from __future__ import annotations

import base64
import io
import uuid

import pytest

from tests.resources.helpers import assert_error, bearer
from tests.support.images import sample_image

DEEP_JSON = "[" * 5000 + "]" * 5000
HUGE_INTEGER = "9" * 5000
EXTREME_DATES = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00")
NUL = "\u0000"


def _json_bodies() -> list[str]:
    return [DEEP_JSON, '{"email": ' + DEEP_JSON + "}", '{"email": ' + HUGE_INTEGER + "}", HUGE_INTEGER]


@pytest.fixture
def endpoints(patient, admin, make_account):
    """(method, path, headers) of each JSON endpoint, with credentials that get past authentication."""
    other = make_account()
    return [
        ("post", "/api/v1/auth/login", {}),
        ("post", "/api/v1/auth/register", {}),
        ("post", "/api/v1/tokens", patient.headers),
        ("patch", f"/api/v1/admin/users/{other.id}", admin.headers),
        ("post", "/api/v1/auth/logout", patient.headers),
    ]


@pytest.mark.parametrize("body_index", range(4))
def test_deep_or_huge_json_is_400_invalid_json(client, endpoints, body_index):
    body = _json_bodies()[body_index]
    for method, path, headers in endpoints:
        response = getattr(client, method)(path, data=body, headers={**headers, "Content-Type": "application/json"})
        assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("moment", EXTREME_DATES)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_extreme_history_dates_are_422(client, patient, moment, name):
    response = client.get("/api/v1/predictions", query_string={name: moment}, headers=patient.headers)
    assert_error(response, 422, "validation_error")
    assert name in response.get_json()["error"]["details"]


@pytest.mark.parametrize("moment", EXTREME_DATES)
@pytest.mark.parametrize("name", ["after", "before"])
def test_extreme_audit_dates_are_422(client, admin, moment, name):
    response = client.get("/api/v1/admin/audit", query_string={name: moment}, headers=admin.headers)
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("moment", EXTREME_DATES)
def test_cursor_decoding_to_an_extreme_date_is_422(client, patient, admin, moment):
    raw = f"{moment}|{uuid.uuid4().hex}".encode("ascii")
    cursor = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    for path, account in (("/api/v1/predictions", patient), ("/api/v1/admin/predictions", admin)):
        response = client.get(path, query_string={"cursor": cursor}, headers=account.headers)
        assert_error(response, 422, "validation_error")
        assert "cursor" in response.get_json()["error"]["details"]


def test_a_date_at_the_edge_that_fits_in_utc_is_accepted(client, patient):
    response = client.get(
        "/api/v1/predictions", query_string={"created_before": "9999-12-31T00:00:00+00:00"}, headers=patient.headers
    )
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("character", [NUL, "\u001b", "\ud800"])
def test_control_characters_in_json_text_are_422_on_every_backend(client, patient, admin, character):
    other_email = f"x{uuid.uuid4().hex[:6]}@example.org"
    cases = [
        ("post", "/api/v1/auth/login", {}, {"email": f"a{character}@example.org", "password": "whatever-123"}),
        (
            "post",
            "/api/v1/auth/register",
            {},
            {"email": other_email, "password": "a-fine-password-9", "full_name": f"Ada{character}"},
        ),
        ("post", "/api/v1/tokens", patient.headers, {"name": f"script{character}"}),
    ]
    for method, path, headers, body in cases:
        response = getattr(client, method)(path, json=body, headers=headers)
        error = assert_error(response, 422, "validation_error")
        assert any("control characters" in " ".join(map(str, m)) for m in error["details"].values()), error


@pytest.mark.parametrize(
    ("path", "name", "as_admin"),
    [
        ("/api/v1/predictions", "label", False),
        ("/api/v1/admin/predictions", "label", True),
        ("/api/v1/admin/users", "email", True),
        ("/api/v1/admin/audit", "action", True),
        ("/api/v1/admin/audit", "target_type", True),
        ("/api/v1/admin/audit", "target_id", True),
    ],
)
def test_nul_in_query_filters_is_422_on_every_backend(client, patient, admin, path, name, as_admin):
    account = admin if as_admin else patient
    response = client.get(path, query_string={name: f"mel{NUL}"}, headers=account.headers)
    error = assert_error(response, 422, "validation_error")
    assert name in error["details"]


def test_nul_in_an_upload_note_is_422(client, patient):
    response = client.post(
        "/api/v1/predictions",
        data={
            "modality": "skin_lesion",
            "note": f"left{NUL}arm",
            "file": (io.BytesIO(sample_image("skin_lesion").read_bytes()), "a.jpg"),
        },
        headers=bearer(patient.access_token),
        content_type="multipart/form-data",
    )
    assert_error(response, 422, "validation_error")


def test_tabs_and_newlines_in_a_name_are_kept(client, patient):
    response = client.post("/api/v1/tokens", json={"name": "line one\nline\ttwo"}, headers=patient.headers)
    assert response.status_code == 201, response.get_json()
