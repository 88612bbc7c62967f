"""Admin pages: patients get the 403 page; admins manage accounts and read predictions, every read audited."""

from __future__ import annotations

import uuid

import pytest

from db import db
from managers.users import UserManager
from models import AuditEvent
from tests.web.conftest import csrf_of, page_text

ADMIN_PAGES = ("/admin/users", "/admin/predictions", "/admin/audit")


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_patients_get_the_forbidden_page(patient_browser, path):
    response = patient_browser.get(path)

    assert response.status_code == 403 and response.mimetype == "text/html"
    assert "administrators only" in page_text(response)


def test_admin_link_only_for_admins(patient_browser, admin_browser):
    assert 'href="/admin/users"' not in page_text(patient_browser.get("/upload"))
    assert 'href="/admin/users"' in page_text(admin_browser.get("/upload"))


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_render(admin_browser, path):
    response = admin_browser.get(path)

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]


def test_admin_disables_and_enables_an_account(app, admin_browser, patient):
    token = csrf_of(admin_browser.get(f"/admin/users?email={patient.email}"))

    disabled = admin_browser.post(f"/admin/users/{patient.id}", data={"is_active": "false", "csrf_token": token})

    assert disabled.status_code == 303
    with app.app_context():
        assert UserManager.get(patient.id).is_active is False
    admin_browser.post(f"/admin/users/{patient.id}", data={"is_active": "true", "csrf_token": token})
    promoted = admin_browser.post(f"/admin/users/{patient.id}", data={"role": "admin", "csrf_token": token})
    assert promoted.status_code == 303
    with app.app_context():
        user = UserManager.get(patient.id)
        assert user.is_active is True and user.role == "admin"


def test_the_banner_shows_only_our_own_messages(admin_browser):
    known = page_text(admin_browser.get("/admin/users?message=disabled"))
    forged = page_text(admin_browser.get("/admin/users?message=Your+session+expired.+Call+0800+123+456"))
    unknown = page_text(admin_browser.get("/admin/users?message=__class__"))

    assert "Account disabled." in known and 'role="status"' in known
    assert "0800" not in forged and 'role="status"' not in forged
    assert 'role="status"' not in unknown


def test_a_change_lands_on_its_banner(admin_browser, patient):
    token = csrf_of(admin_browser.get("/admin/users"))

    done = admin_browser.post(f"/admin/users/{patient.id}", data={"role": "admin", "csrf_token": token})

    assert done.headers["Location"] == "/admin/users?message=role"
    assert "Role changed." in page_text(admin_browser.get(done.headers["Location"]))


@pytest.mark.parametrize(
    ("query", "said"),
    [("role=admin", "an administrator?"), ("role=patient", "a patient?"), ("is_active=false", "Disable")],
)
def test_each_account_change_is_confirmed_on_a_page_first(app, admin_browser, patient, query, said):
    listing = page_text(admin_browser.get("/admin/users"))
    assert f"/admin/users/{patient.id}/change?" in listing

    confirm = admin_browser.get(f"/admin/users/{patient.id}/change?{query}")

    text = page_text(confirm)
    assert confirm.status_code == 200 and said in text and "audit trail" in text
    name, value = query.split("=")
    assert f'name="{name}" value="{value}"' in text
    with app.app_context():
        assert UserManager.get(patient.id).role == "patient" and UserManager.get(patient.id).is_active


def test_an_unknown_change_goes_back_to_the_list(admin_browser, patient):
    response = admin_browser.get(f"/admin/users/{patient.id}/change?role=emperor")

    assert response.status_code == 303 and response.headers["Location"] == "/admin/users"


def test_admin_change_without_csrf_changes_nothing(app, admin_browser, patient):
    response = admin_browser.post(f"/admin/users/{patient.id}", data={"is_active": "false"})

    assert response.status_code == 400
    with app.app_context():
        assert UserManager.get(patient.id).is_active is True


def test_admin_cannot_disable_themselves(admin_browser, admin):
    token = csrf_of(admin_browser.get("/admin/users"))

    response = admin_browser.post(f"/admin/users/{admin.id}", data={"is_active": "false", "csrf_token": token})

    assert response.status_code == 409 and "own account" in page_text(response)


def test_the_admins_own_row_offers_no_disable_demote_or_delete(admin_browser, admin, patient):
    text = page_text(admin_browser.get("/admin/users"))

    def offers_disable(email: str) -> bool:
        return f'Disable<span class="visually-hidden"> {email}' in text

    assert f"/admin/users/{patient.id}/delete" in text and offers_disable(patient.email)
    assert f"/admin/users/{admin.id}/delete" not in text and not offers_disable(admin.email)
    assert "(you)" in text


def test_admin_reads_a_patients_prediction_and_the_read_is_audited(
    app, admin_browser, patient_browser, patient, uploaded
):
    prediction_id = uploaded(patient_browser, note="for the admin")

    listing = page_text(admin_browser.get(f"/admin/predictions?user={patient.email}"))
    detail = admin_browser.get(f"/admin/predictions/{prediction_id}")
    heatmap = admin_browser.get(f"/predictions/{prediction_id}/heatmap")

    assert f"/admin/predictions/{prediction_id}" in listing
    assert detail.status_code == 200 and patient.email in page_text(detail) and "for the admin" in page_text(detail)
    assert heatmap.status_code == 200
    assert admin_browser.get(f"/predictions/{prediction_id}").status_code == 404  # the owner's page is the owner's
    with app.app_context():
        reads = db.session.query(AuditEvent).filter_by(action="prediction.read", target_id=prediction_id).all()
        # One read per opened record: its heatmap, asked for by the record's page just after, is part of it.
        assert [event.details["what"] for event in reads] == ["record"]
    audit = page_text(admin_browser.get("/admin/audit?action=prediction.read"))
    assert prediction_id in audit


def test_audit_trail_says_who_opened_whose_result_in_words(admin_browser, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "chest_xray")
    admin_browser.get(f"/admin/predictions/{prediction_id}")

    text = page_text(admin_browser.get("/admin/audit?action=prediction.read"))

    assert "Ad Min opened Pat Ient&#39;s chest X-ray result" in text
    assert "Opened someone&#39;s result" in text and "Events per day" in text and "per administrator" in text


def test_audit_csv_export_is_a_post_with_csrf_and_is_audited(app, admin_browser, admin):
    page = admin_browser.get(f"/admin/audit?actor={admin.email}")
    assert admin_browser.post("/admin/audit/export", data={"actor": admin.email}).status_code == 400

    export = admin_browser.post("/admin/audit/export", data={"actor": admin.email, "csrf_token": csrf_of(page)})

    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert export.headers["Content-Disposition"].startswith('attachment; filename="medsight-audit-')
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0] == "time_utc,action,description,actor,actor_id,target_type,target_id,ip"
    assert any("read the audit trail" in line for line in lines[1:])
    with app.app_context():
        exported = db.session.query(AuditEvent).filter_by(action="admin.audit.export").one()
        assert str(exported.actor_id) == admin.id and exported.details["rows"] == len(lines) - 1


def test_audit_filters_by_actor_email(admin_browser, admin):
    response = admin_browser.get(f"/admin/audit?actor={admin.email}")

    assert response.status_code == 200
    assert admin.email in page_text(response)
    unknown = admin_browser.get("/admin/audit?actor=nobody@example.org")
    assert "No account has this email" in page_text(unknown)


# The date picker offers any day from 0001-01-01 to 9999-12-31; each must give a page, never a 500.
@pytest.mark.parametrize("day", ["9999-12-31", "9999-12-30", "0001-01-01"])
@pytest.mark.parametrize(
    ("path", "after", "before"),
    [("/admin/predictions", "created_after", "created_before"), ("/admin/audit", "after", "before")],
)
def test_admin_lists_take_every_day_the_date_picker_offers(admin_browser, path, after, before, day):
    for query in ({after: day}, {before: day}, {after: day, before: day}):
        response = admin_browser.get(path, query_string=query)
        assert response.status_code == 200, (query, page_text(response)[:300])


def test_everyones_predictions_until_the_last_day_are_all_of_them(admin_browser, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser)

    response = admin_browser.get("/admin/predictions", query_string={"created_before": "9999-12-31"})

    assert response.status_code == 200 and f"/admin/predictions/{prediction_id}" in page_text(response)


def test_unknown_prediction_is_the_not_found_page_for_admins_too(admin_browser):
    response = admin_browser.get(f"/admin/predictions/{uuid.uuid4()}")

    assert response.status_code == 404 and response.mimetype == "text/html"
