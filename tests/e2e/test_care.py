"""The care loop in the browser: a patient shares a result, a clinician records a verdict, the patient reads it;
a share link opened by someone without an account, then revoked; the admins' agreement table."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from constants import Role
from db import db
from managers.users import UserManager
from tests.e2e.helpers import User, image_loaded, new_context, register, sign_in, sign_out, upload


@pytest.fixture
def clinician_user(live_server) -> User:
    """A clinician, made as `flask users set-role EMAIL clinician` leaves one."""
    user = User.fresh("Dr Clin Ician")
    with live_server.app.app_context():
        UserManager.create(user.email, user.password, role=Role.CLINICIAN, full_name=user.full_name)
        db.session.remove()
    return user


def test_share_with_a_clinician_their_verdict_and_the_patient_reads_it(
    page, other_page, new_user, clinician_user, admin_user, check_page, checker
):
    register(page, new_user)
    prediction_id = upload(page, "skin_lesion", note="Noticed in March")
    page.get_by_label("Your clinician's MedSight email").fill(clinician_user.email)
    page.get_by_role("button", name="Share with clinician").click()
    expect(page.get_by_role("status")).to_contain_text("Shared.")
    expect(page.get_by_role("button", name=f"Stop sharing with {clinician_user.email}")).to_be_visible()
    check_page("care-result-shared")
    report = page.request.get(page.get_by_role("link", name="Report (PDF)").get_attribute("href"))
    assert report.status == 200 and report.headers["content-type"] == "application/pdf"

    sign_in(other_page, clinician_user)
    other_page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    expect(other_page.get_by_role("heading", name="Review queue")).to_be_visible()
    checker.check(other_page, "care-queue")
    other_page.locator(f"a[href$='/reviews/{prediction_id}']").click()
    heatmap = other_page.get_by_role("img", name=re.compile("Heatmap"))
    assert image_loaded(heatmap)
    expect(other_page.get_by_role("main")).to_contain_text("Noticed in March")
    checker.check(other_page, "care-review")
    other_page.get_by_label("Agree", exact=True).check()
    other_page.get_by_label("Comment for the patient").fill("Looks typical; photograph again in six months")
    other_page.get_by_role("button", name="Record review").click()
    expect(other_page.get_by_role("status")).to_contain_text("Your review is recorded")

    page.reload()
    review = page.locator(".review-note")
    expect(review).to_contain_text("Reviewed by a clinician on")
    expect(review).to_contain_text("agrees")
    expect(review).to_contain_text("photograph again in six months")
    check_page("care-result-reviewed")

    sign_out(other_page)
    sign_in(other_page, admin_user)
    other_page.goto("/models/skin_lesion")
    table = other_page.get_by_role("table", name="Clinicians' verdicts per model version")
    expect(table).to_contain_text("100%")
    checker.check(other_page, "care-model-agreement")


def test_a_share_link_opens_in_a_fresh_browser_until_revoked(page, browser, live_server, new_user, check_page, checker):
    register(page, new_user)
    upload(page, "skin_lesion", note="private note")
    page.get_by_label(re.compile("Valid for")).fill("3")
    page.get_by_role("button", name="Make a share link").click()
    url = page.locator("#link-url").inner_text().strip()
    assert re.search(r"/s/[A-Za-z0-9_-]{40,}$", url), url
    check_page("care-link-created")

    doctor = new_context(browser, live_server.url, timezone_id="Europe/Paris")
    try:
        doctor_page = doctor.new_page()
        checker.watch(doctor_page)
        response = doctor_page.goto(url)
        assert response.status == 200
        assert response.headers["cache-control"] == "no-store" and "noindex" in response.headers["x-robots-tag"]
        expect(doctor_page.get_by_role("heading", level=1)).to_contain_text("Shared result")
        assert image_loaded(doctor_page.get_by_role("img", name=re.compile("Heatmap")))
        expect(doctor_page.get_by_role("main")).not_to_contain_text("private note")
        expect(doctor_page.get_by_role("link", name="History")).to_have_count(0)
        report = doctor_page.get_by_role("link", name="Report (PDF)")  # in the doctor's time zone
        expect(report).to_have_attribute("href", re.compile(r"/report\.pdf\?tz=Europe%2FParis$"))
        checker.check(doctor_page, "care-shared-link")

        page.goto("/links")
        expect(page.get_by_role("main")).to_contain_text("1 time")
        check_page("care-links")
        page.get_by_role("button", name=re.compile("Revoke link")).click()
        expect(page.get_by_role("status")).to_contain_text("Link revoked")

        gone = doctor_page.goto(url)
        assert gone.status == 410
        expect(doctor_page.get_by_role("heading", level=1)).to_have_text("This link is no longer valid")
        checker.check(doctor_page, "care-link-gone")
    finally:
        doctor.close()
