"""Times on the pages in the reader's own time zone (from the browser), and in UTC, said so, without JavaScript."""

from __future__ import annotations

import io
import re

from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e.helpers import new_context, register, upload
from tests.e2e.test_history_pages import seed_history
from tests.support.images import sample_image


def test_history_shows_times_in_the_readers_time_zone(browser, live_server, new_user, checker):
    context = new_context(browser, live_server.url, timezone_id="Asia/Kolkata")  # UTC+05:30, no summer time
    try:
        page = context.new_page()
        checker.watch(page)
        register(page, new_user)
        seed_history(live_server, new_user.email, 1, sample_image("skin_lesion").read_bytes())
        page.goto("/history")
        moment = page.locator(".history-item time").first
        expect(moment).not_to_contain_text("UTC")
        utc = moment.get_attribute("datetime")
        shown = page.evaluate(
            "iso => new Intl.DateTimeFormat('en-GB', {day: 'numeric', month: 'short', year: 'numeric',"
            " hour: '2-digit', minute: '2-digit', timeZone: 'Asia/Kolkata'}).format(new Date(iso))",
            utc,
        )
        expect(moment).to_contain_text(shown)
        assert moment.get_attribute("title") and "UTC" in moment.get_attribute("title")
        checker.check(page, "history-local-time")
    finally:
        context.close()


def test_without_javascript_times_say_they_are_utc(browser, live_server, new_user):
    context = new_context(browser, live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        register(page, new_user)
        seed_history(live_server, new_user.email, 1, sample_image("skin_lesion").read_bytes())
        page.goto("/history")
        expect(page.locator(".history-item time").first).to_have_text(re.compile(r"\d{2}:\d{2} UTC$"))
    finally:
        context.close()


def test_the_report_link_asks_for_the_readers_time_zone(browser, live_server, new_user, checker):
    context = new_context(browser, live_server.url, timezone_id="America/Sao_Paulo")
    try:
        page = context.new_page()
        checker.watch(page)
        register(page, new_user)
        upload(page, "skin_lesion")
        report = page.get_by_role("link", name="Report (PDF)")
        expect(report).to_have_attribute("href", re.compile(r"/report\.pdf\?tz=America%2FSao_Paulo$"))
        expect(page.locator("#report-zone")).to_have_text(
            "The report gives times in your time zone (America/Sao_Paulo)."
        )
        pdf = page.request.get(report.get_attribute("href"))
        assert pdf.status == 200 and "(America/Sao_Paulo)" in pdf_text(pdf.body())
        checker.check(page, "result-report-zone")
    finally:
        context.close()


def test_without_javascript_the_report_says_its_times_are_utc(browser, live_server, new_user):
    context = new_context(browser, live_server.url, java_script_enabled=False, timezone_id="America/Sao_Paulo")
    try:
        page = context.new_page()
        register(page, new_user)
        prediction_id = upload(page, "skin_lesion")
        report = page.get_by_role("link", name="Report (PDF)")
        expect(report).to_have_attribute("href", f"/predictions/{prediction_id}/report.pdf")
        expect(page.locator("#report-zone")).to_have_text("The report gives times in UTC.")
        assert " UTC" in pdf_text(page.request.get(report.get_attribute("href")).body())
    finally:
        context.close()


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)
