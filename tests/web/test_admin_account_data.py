"""An admin exports or deletes an account from the admin pages: a confirmation first, the CSRF value required,
and the trail keeps who did it."""

from __future__ import annotations

import io
import json
import zipfile

from tests.web.conftest import csrf_of, page_text


def test_the_users_page_offers_export_and_delete(admin_browser, patient):
    text = page_text(admin_browser.get("/admin/users"))
    assert f'<form method="post" action="/admin/users/{patient.id}/export">' in text
    assert f"/admin/users/{patient.id}/delete" in text


def test_an_admin_exports_an_account(admin_browser, patient):
    token = csrf_of(admin_browser.get("/admin/users"))

    response = admin_browser.post(f"/admin/users/{patient.id}/export", data={"csrf_token": token})

    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("account.json"))["account"]["id"] == patient.id


def _export_events(client, admin) -> list:
    return client.get("/api/v1/admin/audit?action=account.export", headers=admin.headers).get_json()["items"]


def test_a_link_cannot_export_an_account(admin_browser, client, patient, admin):
    """A link or an image on another site is a GET without the form's CSRF value: no data leaves, nothing is audited."""
    assert admin_browser.get(f"/admin/users/{patient.id}/export").status_code == 405
    refused = admin_browser.post(f"/admin/users/{patient.id}/export")
    forged = admin_browser.post(f"/admin/users/{patient.id}/export", data={"csrf_token": "not-the-session-value"})

    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert forged.status_code == 400 and forged.mimetype == "text/html"
    assert _export_events(client, admin) == []


def test_deleting_asks_first_needs_the_csrf_value_and_is_audited(admin_browser, client, patient, admin):
    confirm = admin_browser.get(f"/admin/users/{patient.id}/delete")
    assert confirm.status_code == 200 and patient.email in page_text(confirm)
    assert admin_browser.post(f"/admin/users/{patient.id}/delete").status_code == 400
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 200

    done = admin_browser.post(f"/admin/users/{patient.id}/delete", data={"csrf_token": csrf_of(confirm)})
    assert done.status_code == 303
    assert "Account deleted" in page_text(admin_browser.get(done.headers["Location"]))
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 401
    audit = client.get("/api/v1/admin/audit?action=account.delete", headers=admin.headers).get_json()["items"]
    assert [event["actor_id"] for event in audit] == [admin.id]


def test_an_admin_cannot_delete_their_own_account_here(admin_browser, admin):
    confirm = admin_browser.get(f"/admin/users/{admin.id}/delete")
    refused = admin_browser.post(f"/admin/users/{admin.id}/delete", data={"csrf_token": csrf_of(confirm)})
    assert refused.status_code == 409 and "your own account" in page_text(refused)


def test_a_patient_has_neither(patient_browser, make_account):
    other = make_account()
    token = csrf_of(patient_browser.get("/account"))
    assert patient_browser.post(f"/admin/users/{other.id}/export", data={"csrf_token": token}).status_code == 403
    assert patient_browser.get(f"/admin/users/{other.id}/delete").status_code == 403
