"""The account page's "Export my data" and "Delete my account": a zip download, and a deletion that takes the
password and the form's CSRF value, ends the session and leaves nothing behind."""

from __future__ import annotations

import io
import json
import zipfile

from tests.web.conftest import csrf_of, page_text


def delete_form(client, password: str, *, with_csrf: bool = True):
    page = client.get("/account")
    data = {"password": password}
    if with_csrf:
        data["csrf_token"] = csrf_of(page)
    return client.post("/account/delete", data=data)


def test_the_account_page_offers_both(patient_browser):
    text = page_text(patient_browser.get("/account"))
    assert 'href="/account/export"' in text and "Export my data" in text
    assert 'action="/account/delete"' in text and "Delete my account" in text


def test_export_is_a_zip_of_the_account(patient_browser, patient):
    response = patient_browser.get("/account/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "no-store" in response.headers["Cache-Control"]
    document = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("account.json"))
    assert document["account"]["email"] == patient.email


def test_delete_without_the_csrf_value_is_refused_and_changes_nothing(patient_browser, client, patient):
    assert delete_form(patient_browser, patient.password, with_csrf=False).status_code == 400
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 200


def test_a_wrong_password_is_said_next_to_the_field(patient_browser, client, patient):
    response = delete_form(patient_browser, "wrong-password-9")
    assert response.status_code == 422
    assert "The password is incorrect." in page_text(response)
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 200


def test_deleting_signs_out_and_the_account_is_gone(patient_browser, client, patient):
    response = delete_form(patient_browser, patient.password)
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/deleted")
    assert "was deleted" in page_text(patient_browser.get("/account/deleted"))
    assert patient_browser.get("/account").status_code in (302, 303)
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 401
