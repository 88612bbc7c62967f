"""Fixtures for the browser pages: a test client signed in through the pages, and form helpers."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cnn_model.modalities import MODALITIES
from tests.support.images import sample_image

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ACCESS_COOKIE = "medsight_access"
REFRESH_COOKIE = "medsight_refresh"


def csrf_of(response) -> str:
    """The CSRF value of the first form on a page."""
    match = CSRF_FIELD.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:500]
    return match.group(1)


def page_text(response) -> str:
    return response.get_data(as_text=True)


def sign_in(client: FlaskClient, email: str, password: str) -> None:
    token = csrf_of(client.get("/login"))
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, page_text(response)[:500]


@pytest.fixture
def browser(app) -> Callable[..., FlaskClient]:
    """A fresh client (its own cookie jar), signed in as account if one is given."""

    def make(account=None) -> FlaskClient:
        client = app.test_client()
        if account is not None:
            sign_in(client, account.email, account.password)
        return client

    return make


@pytest.fixture
def patient_browser(browser, patient) -> FlaskClient:
    return browser(patient)


@pytest.fixture
def admin_browser(browser, admin) -> FlaskClient:
    return browser(admin)


@pytest.fixture
def upload_page() -> Callable[..., object]:
    """Send the upload form from a signed-in browser; returns the response (not followed)."""

    def send(client: FlaskClient, modality: str | None, path: Path | None = None, *, data: bytes | None = None, **form):
        token = csrf_of(client.get("/upload"))
        content = (
            data
            if data is not None
            else (path or sample_image(modality if modality in MODALITIES else "chest_xray")).read_bytes()
        )
        body = {"csrf_token": token, "file": (io.BytesIO(content), "image.jpg"), **form}
        if modality is not None:
            body["modality"] = modality
        return client.post("/upload", data=body, content_type="multipart/form-data")

    return send


@pytest.fixture
def uploaded(upload_page) -> Callable[..., str]:
    """Upload an image through the page and return the new result's id."""

    def make(client: FlaskClient, modality: str = "chest_xray", **form) -> str:
        response = upload_page(client, modality, **form)
        assert response.status_code == 303, page_text(response)[:500]
        return response.headers["Location"].rsplit("/", 1)[-1]

    return make
