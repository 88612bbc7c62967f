"""What a person does on the pages (register, sign in, upload), and the per-page checks: axe and screenshots."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe

from cnn_model.modalities import get_spec
from tests.support.images import sample_image

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Uploads run the CNN and draw the heatmap on a shared, busy CPU: give navigations room.
NAVIGATION_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 10_000
BLOCKING_IMPACTS = ("serious", "critical")
SUBRESOURCE_TYPES = ("stylesheet", "script", "image", "font", "media")
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RESULT_URL = re.compile(rf"/predictions/(?P<id>{UUID_PATTERN})$")


@dataclass
class User:
    email: str
    password: str
    full_name: str

    @classmethod
    def fresh(cls, full_name: str = "Pat Ient") -> User:
        """Credentials for an account that does not exist yet (a test registers it through the pages)."""
        return cls(f"user-{uuid.uuid4().hex[:8]}@example.org", "analytical-engine-1843", full_name)


def new_context(browser, base_url: str, **options):
    """A browser context (its own cookies) at the desktop size with the suite's timeouts."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, locale="en-GB", **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    return context


# -- flows --------------------------------------------------------------------------------------


def register(page, user) -> None:
    """Create an account from the home page, as a visitor would."""
    page.goto("/")
    page.get_by_role("link", name="Create account").first.click()
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Full name").fill(user.full_name)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_load_state()


def sign_in(page, user) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.get_by_role("button", name="Sign out").is_visible(), f"not signed in: {page.url}"


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def upload(page, modality: str, note: str = "") -> str:
    """Upload the modality's sample image from the Upload page; returns the result page's prediction id."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
    page.get_by_role("radio", name=get_spec(modality).display_name, exact=True).check()
    page.locator("input[type=file][name=file]").set_input_files(sample_image(modality))
    if note:
        page.get_by_label("Note").fill(note)
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(RESULT_URL)
    return RESULT_URL.search(page.url)["id"]


def image_loaded(locator) -> bool:
    """The img element gets fetched and decoded (a broken image has naturalWidth 0), waiting for it as a person would.

    A heatmap is drawn when first asked for, so it can arrive well after the page.
    """
    locator.evaluate(
        "(img, limit) => img.complete || new Promise(done => { img.addEventListener('load', done, {once: true});"
        " img.addEventListener('error', done, {once: true}); setTimeout(done, limit); })",
        NAVIGATION_TIMEOUT_MS,
    )
    return locator.evaluate("img => img.complete && img.naturalWidth > 0")


# -- per-page checks ----------------------------------------------------------------------------


class PageChecker:
    """Runs axe on a page at phone and desktop width and, with screenshots, writes a full-page screenshot of each.

    Fails on any serious or critical axe violation, and on a page wider than the screen; every page's
    findings are kept in report (by page name), which the caller writes out.
    """

    def __init__(self, folder: Path, report: dict[str, dict], *, screenshots: bool = True):
        self.folder = folder
        self.screenshots = screenshots
        self.axe = Axe()
        self.report = report
        self.console_errors: dict[int, list[str]] = {}

    def watch(self, page) -> None:
        """Record console errors, uncaught exceptions (a CSP refusal shows up as one) and failed subresources."""
        errors = self.console_errors.setdefault(id(page), [])

        def on_console(message) -> None:
            # A page or an XHR answered with 4xx on purpose (a refused form, the 404 page) logs this;
            # stylesheets, scripts and images are checked by status below instead.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                errors.append(message.text)

        def on_response(response) -> None:
            if response.request.resource_type in SUBRESOURCE_TYPES and response.status >= 400:
                errors.append(f"{response.status} for {response.request.resource_type} {response.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", on_response)

    def check(self, page, name: str) -> None:
        page.wait_for_load_state("load")
        assert not self.console_errors.get(id(page)), f"console errors on {name}: {self.console_errors[id(page)]}"
        desktop = page.viewport_size
        findings, overflow = {}, {}
        try:
            for size_name, size in (("phone", PHONE), ("desktop", desktop)):
                page.set_viewport_size(size)
                if self.screenshots:
                    page.screenshot(path=self.folder / f"{name}-{size_name}.png", full_page=True)
                findings[size_name] = self._violations(page)
                # Wide content belongs in its own scroller (tables do); the page itself never scrolls sideways.
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > size["width"]:
                    overflow[size_name] = width
        finally:
            page.set_viewport_size(desktop)
        self.report[name] = {"url": page.url, **findings, "page_wider_than_screen": overflow}
        blocking = {
            size_name: [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
            for size_name, violations in findings.items()
        }
        assert not any(blocking.values()), f"axe on {name} ({page.url}): {json.dumps(blocking, indent=1)}"
        assert not overflow, f"{name} ({page.url}) scrolls sideways: {overflow} px wide"

    def _violations(self, page) -> list[dict]:
        results = self.axe.run(page)
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "targets": [node["target"] for node in v["nodes"]][:5],
            }
            for v in results.response["violations"]
        ]
