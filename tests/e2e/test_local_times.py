"""Times on the pages in the reader's own time zone (from the browser), and in UTC, said so, without JavaScript."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.helpers import new_context, register
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
