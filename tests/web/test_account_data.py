"""The account page's "Export my data" and "Delete my account": a zip download, and a deletion that takes the
password and the form's CSRF value, ends the session and leaves nothing behind."""

from __future__ import annotations

import io
import json
import time
import zipfile

from managers import sign_in_backoff
from managers.sign_in_backoff import FREE_FAILURES
from tests.web.conftest import csrf_of, page_text


def delete_form(client, password: str, *, with_csrf: bool = True):
    page = client.get("/account")
    data = {"password": password}
    if with_csrf:
        data["csrf_token"] = csrf_of(page)
    return client.post("/account/delete", data=data)


def test_the_account_page_offers_both(patient_browser):
    text = page_text(patient_browser.get("/account"))
    assert '<form method="post" action="/account/export">' in text and "Export my data" in text
    assert 'action="/account/delete"' in text and "Delete my account" in text


def test_export_is_a_zip_of_the_account(patient_browser, patient):
    response = patient_browser.post("/account/export", data={"csrf_token": csrf_of(patient_browser.get("/account"))})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "no-store" in response.headers["Cache-Control"]
    document = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("account.json"))
    assert document["account"]["email"] == patient.email


def test_a_link_cannot_start_an_export(patient_browser):
    assert patient_browser.get("/account/export").status_code == 405
    assert patient_browser.post("/account/export").status_code == 400
    assert patient_browser.post("/account/export", data={"csrf_token": "forged"}).status_code == 400


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


def test_wrong_passwords_on_the_page_are_slowed_down_then_the_right_one_deletes(
    patient_browser, browser, client, monkeypatch, patient
):
    # A one-second first wait, so the test can sit it out.
    monkeypatch.setattr(sign_in_backoff, "FIRST_DELAY_SECONDS", 1)
    for _ in range(FREE_FAILURES + 1):  # the last one starts the wait
        assert delete_form(patient_browser, "wrong-guess-1").status_code == 422

    waiting = delete_form(patient_browser, patient.password)  # even the right password waits

    assert waiting.status_code == 429 and int(waiting.headers["Retry-After"]) > 0
    assert "try again in" in page_text(waiting)
    assert patient_browser.get("/account").status_code == 200  # still signed in, nothing deleted
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 200
    # The same per-account wait holds back signing in on the page.
    other = browser()
    token = csrf_of(other.get("/login"))
    held_back = other.post("/login", data={"email": patient.email, "password": patient.password, "csrf_token": token})
    assert held_back.status_code == 429

    time.sleep(sign_in_backoff.delay_after(FREE_FAILURES + 1) + 0.2)
    deleted = delete_form(patient_browser, patient.password)

    assert deleted.status_code == 303 and deleted.headers["Location"].endswith("/account/deleted")
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 401
