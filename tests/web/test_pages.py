"""Public pages, the security headers every response carries, and errors as pages (the API keeps JSON)."""

from __future__ import annotations

import pytest

from cnn_model.modalities import MODALITIES, get_spec
from tests.resources.helpers import assert_error
from tests.web.conftest import page_text


def test_home_page_describes_each_kind_of_image_and_links_to_sign_in(client):
    response = client.get("/")

    assert response.status_code == 200
    text = page_text(response)
    for modality in MODALITIES:
        assert get_spec(modality).display_name in text
        assert f"/static/examples/{modality}.jpg" in text
    assert "correct on" in text and "of 100" in text
    assert "not a diagnosis" in text.lower()
    assert 'href="/login"' in text and 'href="/register"' in text
    assert text.count("<h1") == 1


def test_example_images_are_small(client):
    for modality in MODALITIES:
        response = client.get(f"/static/examples/{modality}.jpg")
        assert response.status_code == 200
        assert len(response.data) < 40 * 1024


def test_every_page_has_landmarks_and_a_skip_link(client):
    text = page_text(client.get("/"))
    for landmark in ("<header", "<nav", '<main id="main"', "<footer", 'href="#main"'):
        assert landmark in text


def test_responses_carry_the_security_headers(client):
    response = client.get("/")

    csp = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")


def test_pages_carry_no_inline_script_or_style(client):
    for path in ("/", "/login", "/register", "/models", f"/models/{MODALITIES[0]}"):
        text = page_text(client.get(path))
        assert "<script>" not in text and "style=" not in text and "<style" not in text, path


def test_swagger_ui_still_renders_under_its_own_policy(client):
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert "swagger" in page_text(response).lower()
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("modality", MODALITIES)
def test_model_page_shows_the_cards_figures(client, modality):
    response = client.get(f"/models/{modality}")

    assert response.status_code == 200
    text = page_text(response)
    assert get_spec(modality).display_name in text
    assert "of 100" in text and "Known limitations" in text and "Licence" in text
    for plot in ("confusion_matrix", "roc"):
        image = client.get(f"/models/{modality}/{plot}.png")
        assert image.status_code == 200 and image.mimetype == "image/png"


def test_models_index_lists_every_model(client):
    text = page_text(client.get("/models"))
    for modality in MODALITIES:
        assert f'href="/models/{modality}"' in text


def test_unknown_model_is_the_not_found_page(client):
    response = client.get("/models/teeth")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Page not found" in page_text(response)


def test_unknown_url_is_a_page_for_browsers_and_json_for_api_clients(client):
    page = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404 and page.mimetype == "text/html"

    assert_error(client.get("/no/such/page"), 404, "not_found")
    assert_error(client.get("/api/v1/nothing", headers={"Accept": "text/html"}), 404, "not_found")
