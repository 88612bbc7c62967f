"""Static files: content-versioned URLs cached for a year, revalidated otherwise, gzip'd when taken; pages never are."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import url_for

from config import PROJECT_ROOT
from tests.web.conftest import page_text
from utils.static_files import EXTENSION, StaticFiles

STATIC = PROJECT_ROOT / "static"
STATIC_URL = re.compile(r'(?:href|src)="(/static/[^"]+)"')
IMMUTABLE = "public, max-age=31536000, immutable"
# What Chromium, Firefox and Safari send.
BROWSER_ENCODINGS = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def _version_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _static_urls(response) -> dict[str, str]:
    """The page's static URLs by the file they name (css/medsight.css, ...)."""
    urls = STATIC_URL.findall(page_text(response))
    return {urlsplit(url).path.removeprefix("/static/"): url.replace("&amp;", "&") for url in urls}


def test_a_pages_stylesheet_script_and_icon_carry_their_files_content_version(client):
    urls = _static_urls(client.get("/login"))
    assert {"css/medsight.css", "favicon.svg", "js/local-time.js"} <= urls.keys(), urls
    for name, url in urls.items():
        assert parse_qs(urlsplit(url).query)["v"] == [_version_of(STATIC / name)], url


def test_a_versioned_url_is_cached_for_a_year_as_immutable(client):
    for name, url in _static_urls(client.get("/login")).items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == IMMUTABLE, url
        assert response.get_data() == (STATIC / name).read_bytes(), url


@pytest.mark.parametrize("query", ["", "?v=000000000000", "?v="])
def test_without_the_current_version_a_file_is_revalidated(client, query):
    response = client.get(f"/static/css/medsight.css{query}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.get_data() == (STATIC / "css/medsight.css").read_bytes()


@pytest.mark.parametrize("name", ["css/medsight.css", "js/local-time.js", "favicon.svg"])
def test_text_is_sent_gzipd_to_a_client_that_takes_gzip(client, name):
    url = f"/static/{name}?v={_version_of(STATIC / name)}"
    response = client.get(url, headers=BROWSER_ENCODINGS)
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == IMMUTABLE
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body)
    assert gzip.decompress(body) == (STATIC / name).read_bytes()
    plain = client.get(url)
    assert response.headers["ETag"] != plain.headers["ETag"]  # two representations, two ETags
    again = client.get(url, headers={**BROWSER_ENCODINGS, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and not again.get_data()


@pytest.mark.parametrize("accept_encoding", [None, "br, deflate", "gzip;q=0, br", "identity"])
def test_text_is_sent_as_it_is_to_a_client_that_does_not_take_gzip(client, accept_encoding):
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
    response = client.get("/static/css/medsight.css", headers=headers)
    assert "Content-Encoding" not in response.headers
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.get_data() == (STATIC / "css/medsight.css").read_bytes()
    assert int(response.headers["Content-Length"]) == len(response.get_data())


def test_images_are_versioned_but_not_compressed_again(client):
    name = "examples/skin_lesion.jpg"
    response = client.get(f"/static/{name}?v={_version_of(STATIC / name)}", headers=BROWSER_ENCODINGS)
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert "Content-Encoding" not in response.headers and "Vary" not in response.headers
    assert response.get_data() == (STATIC / name).read_bytes()


def test_pages_and_api_answers_are_never_compressed(client, patient, patient_browser):
    """They carry secrets (CSRF values, tokens) beside text the caller chooses: compressing them is BREACH."""
    answers = {
        "sign-in page": client.get("/login?next=/history", headers=BROWSER_ENCODINGS),
        "history page": patient_browser.get("/history?modality=skin_lesion", headers=BROWSER_ENCODINGS),
        "account page": patient_browser.get("/account", headers=BROWSER_ENCODINGS),
        "API": client.get("/api/v1/predictions", headers={**patient.headers, **BROWSER_ENCODINGS}),
        "API document": client.get("/api/v1/openapi.json", headers=BROWSER_ENCODINGS),
    }
    for what, response in answers.items():
        assert response.status_code == 200, what
        assert "Content-Encoding" not in response.headers, what
    assert "no-store" in answers["history page"].headers["Cache-Control"]


def test_a_changed_file_gets_a_new_version_and_its_old_url_is_revalidated(app, client, tmp_path, monkeypatch):
    monkeypatch.setitem(app.extensions, EXTENSION, StaticFiles(tmp_path))
    stylesheet = tmp_path / "css" / "site.css"
    stylesheet.parent.mkdir()
    stylesheet.write_text("body { color: black; }\n" * 50)
    with app.test_request_context():
        old_url = url_for("static", filename="css/site.css")
    stylesheet.write_text("body { color: navy; }\n" * 50)
    later = stylesheet.stat().st_mtime + 10  # a new modification time, however coarse the file system's clock
    os.utime(stylesheet, (later, later))
    with app.test_request_context():
        new_url = url_for("static", filename="css/site.css")

    assert old_url != new_url and new_url.endswith(f"?v={_version_of(stylesheet)}")
    old, new = client.get(old_url), client.get(new_url)
    assert old.headers["Cache-Control"] == "no-cache" and new.headers["Cache-Control"] == IMMUTABLE
    assert old.get_data() == new.get_data() == stylesheet.read_bytes()
    assert gzip.decompress(client.get(new_url, headers=BROWSER_ENCODINGS).get_data()) == stylesheet.read_bytes()


def test_a_missing_file_has_no_version_and_is_404(app, client):
    with app.test_request_context():
        assert url_for("static", filename="css/nothing.css") == "/static/css/nothing.css"
    assert client.get("/static/css/nothing.css").status_code == 404
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/css").status_code == 404
