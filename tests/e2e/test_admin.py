"""Admin pages in the browser: users, everyone's predictions, and the audit log that records the admin's reads."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from constants import Role
from db import db
from managers.users import UserManager
from models import AuditEvent
from tests.e2e.helpers import DESKTOP, PHONE, User, image_loaded, register, sign_in, upload


def open_admin_section(page, section: str) -> None:
    """Admin in the header, then the section's link in the administration menu."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.get_by_role("navigation", name="Administration").get_by_role("link", name=section).click()
    page.wait_for_load_state()


def test_admin_opens_a_patients_upload_and_the_audit_log_records_it(page, other_page, new_user, admin_user, check_page):
    register(other_page, new_user)
    prediction_id = upload(other_page, "chest_xray", note="for the admin to see")

    sign_in(page, admin_user)
    open_admin_section(page, "Users")
    expect(page.get_by_role("main")).to_contain_text(new_user.email)
    check_page("admin-users")

    open_admin_section(page, "Predictions")
    row_link = page.get_by_role("main").locator(f"a[href*='/admin/predictions/{prediction_id}']").first
    expect(row_link).to_be_visible()
    check_page("admin-predictions")

    row_link.click()
    expect(page).to_have_url(re.compile(rf"/admin/predictions/{prediction_id}$"))
    expect(page.get_by_role("main")).to_contain_text(new_user.email)
    heatmap = page.get_by_role("img", name=re.compile("heatmap", re.IGNORECASE)).first
    expect(heatmap).to_be_visible()
    assert image_loaded(heatmap)
    check_page("admin-prediction")

    open_admin_section(page, "Audit trail")
    page.get_by_label("Action").select_option(label="Opened someone's result")
    page.get_by_role("button", name="Filter").click()
    read_entry = page.get_by_role("row").filter(has_text=prediction_id)
    # One event for the record, its photo and heatmap included, in words.
    expect(read_entry).to_have_count(1)
    expect(read_entry.get_by_role("rowheader")).to_contain_text(
        f"{admin_user.full_name} opened {new_user.full_name}'s chest X-ray result"
    )
    expect(page.get_by_role("columnheader", name="IP address")).to_be_visible()
    expect(page.get_by_role("table", name="Events per day")).to_be_visible()
    expect(page.get_by_role("table", name="Results of other people opened, per administrator")).to_contain_text(
        admin_user.full_name
    )
    check_page("admin-audit")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download these events as CSV").click()
    csv_text = Path(download.value.path()).read_text("utf-8")
    assert csv_text.startswith("time_utc,action,description") and prediction_id in csv_text


def test_patient_has_no_admin_pages(page, new_user):
    register(page, new_user)

    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")).to_have_count(0)
    for path in ("/admin/users", "/admin/predictions", "/admin/audit"):
        response = page.goto(path)
        assert response.status in (403, 404), (path, response.status)


def test_admin_disables_then_deletes_an_account(page, other_page, new_user, admin_user, check_page):
    register(other_page, new_user)
    sign_in(page, admin_user)
    open_admin_section(page, "Users")
    page.get_by_label("Email contains").fill(new_user.email)
    page.get_by_role("button", name="Filter").click()
    row = page.get_by_role("row").filter(has_text=new_user.email)
    check_page("admin-users-filtered")

    row.get_by_role("link", name=f"Disable {new_user.email}").click()
    check_page("admin-confirm-disable")
    page.get_by_role("button", name="Yes, disable the account").click()

    expect(row).to_contain_text("Disabled")
    other_page.goto("/history")
    expect(other_page).to_have_url(re.compile(r"/login"))

    row.get_by_role("link", name=f"Delete {new_user.email}").click()
    expect(page.get_by_role("heading", name="Delete this account?")).to_be_visible()
    check_page("admin-delete-user")
    page.get_by_role("button", name="Yes, delete the account").click()

    page.wait_for_load_state()
    open_admin_section(page, "Users")
    expect(page.get_by_role("main")).not_to_contain_text(new_user.email)


def test_admin_users_fit_a_phone_one_card_per_account(page, admin_user, live_server, check_page):
    patients = [User.fresh(f"Patient Number {n}") for n in range(1, 6)]
    with live_server.app.app_context():
        for patient in patients:
            UserManager.create(patient.email, patient.password, role=Role.PATIENT, full_name=patient.full_name)
        db.session.remove()
    sign_in(page, admin_user)
    open_admin_section(page, "Users")
    check_page("admin-users-list")

    page.set_viewport_size(PHONE)
    # Neither the page nor the table scrolls sideways: the rows stack as cards.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    table = page.get_by_role("table", name="Accounts, newest first")
    assert table.evaluate("table => table.parentElement.scrollWidth <= table.parentElement.clientWidth")
    for patient in patients:
        row = page.get_by_role("row").filter(has_text=patient.email)
        expect(row.get_by_role("cell", name="Active")).to_be_visible()
        for action in (
            row.get_by_role("link", name=f"Disable {patient.email}"),
            row.get_by_role("link", name=f"Delete {patient.email}"),
        ):
            box = action.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (patient.email, box)
    row = page.get_by_role("row").filter(has_text=patients[0].email)
    row.get_by_role("link", name=f"Disable {patients[0].email}").click()
    page.get_by_role("button", name="Yes, disable the account").click()
    expect(row.get_by_role("cell", name="Disabled")).to_be_visible()

    # The admin's own card has no Disable or Delete, as the table row has none.
    page.get_by_label("Email contains").fill(admin_user.email)
    page.get_by_role("button", name="Filter").click()
    own_row = page.get_by_role("row").filter(has_text=admin_user.email)
    expect(own_row.get_by_role("link", name=re.compile("^Predictions"))).to_be_visible()
    expect(own_row.get_by_role("link", name=re.compile("^Disable"))).to_have_count(0)
    expect(own_row.get_by_role("link", name=re.compile("^Delete"))).to_have_count(0)
    page.set_viewport_size(DESKTOP)

    # A filter that finds nobody: the page says so, at both sizes.
    page.get_by_label("Email contains").fill("nobody-here@example.org")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row").filter(has_text=admin_user.email)).to_have_count(0)
    check_page("admin-users-none-found")


def test_making_an_admin_asks_first_and_says_what_it_means(page, other_page, new_user, admin_user, check_page):
    register(other_page, new_user)
    sign_in(page, admin_user)
    open_admin_section(page, "Users")
    row = page.get_by_role("row").filter(has_text=new_user.email)

    row.get_by_role("link", name=f"Make admin ({new_user.email})").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Make {new_user.email} an administrator?")
    expect(page.get_by_role("main")).to_contain_text("everyone's results")
    check_page("admin-confirm-make-admin")
    page.get_by_role("link", name="No, leave it as it is").click()
    expect(row.get_by_role("cell", name="Patient")).to_be_visible()

    row.get_by_role("link", name=f"Make admin ({new_user.email})").click()
    page.get_by_role("button", name="Yes, make them an administrator").click()
    expect(page.get_by_role("status")).to_have_text("Role changed.")
    expect(row.get_by_role("cell", name="Admin")).to_be_visible()


def _reads_of(live_server, prediction_id: str) -> int:
    with live_server.app.app_context():
        count = db.session.query(AuditEvent).filter_by(action="prediction.read", target_id=prediction_id).count()
        db.session.remove()
    return count


def test_a_link_on_another_site_reads_nothing_under_an_admins_session(
    page, other_page, new_user, admin_user, live_server
):
    """The session cookies are SameSite=Strict: a visit that starts on another site arrives signed out."""
    register(other_page, new_user)
    prediction_id = upload(other_page, "chest_xray")
    sign_in(page, admin_user)
    record = f"{live_server.url}/admin/predictions/{prediction_id}"
    photo = f"{live_server.url}/predictions/{prediction_id}/image"
    elsewhere = f'<a href="{record}">a record</a> <a href="{photo}">a photo</a> <img src="{photo}" alt="">'
    page.route("http://elsewhere.example/", lambda route: route.fulfill(content_type="text/html", body=elsewhere))

    for name in ("a record", "a photo"):
        page.goto("http://elsewhere.example/")
        page.get_by_role("link", name=name).click()
        page.wait_for_load_state()
        expect(page).to_have_url(re.compile(r"/login\?next="))

    assert _reads_of(live_server, prediction_id) == 0
    page.goto(record)  # typed or bookmarked: the session is there
    expect(page.get_by_role("main")).to_contain_text(new_user.email)
    assert _reads_of(live_server, prediction_id) == 1  # the record: its photo and heatmap are part of that read


def test_admin_exports_an_account_with_the_button(page, other_page, new_user, admin_user):
    register(other_page, new_user)
    sign_in(page, admin_user)
    open_admin_section(page, "Users")
    row = page.get_by_role("row").filter(has_text=new_user.email)

    with page.expect_download() as download_info:
        row.get_by_role("button", name=f"Export data of {new_user.email}").click()

    download = download_info.value
    with zipfile.ZipFile(download.path()) as archive:
        assert new_user.email in archive.read("account.json").decode()
