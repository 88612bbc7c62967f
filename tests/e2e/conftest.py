"""Browser tests: the web pages served by a live app and driven in real Chromium through Playwright.

One live server per session (a testing app on a temporary SQLite file and photo folder, served by
werkzeug in a thread on a free 127.0.0.1 port), one browser per session, a fresh browser context and
page per test. The browser is the system's Chromium (Debian's ``chromium`` package): Playwright's
own browser download is never used. Without Chromium the tests are skipped with the reason, unless
MEDSIGHT_REQUIRE_BROWSER=1 (CI sets it), where a missing browser fails them instead.
Every test here carries the ``browser`` marker; ``pytest -m "not browser"`` leaves them out.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from werkzeug.serving import make_server

from constants import Role
from db import db
from managers.users import UserManager
from tests.conftest import dispose, make_app, make_database, migrate_to_head
from tests.e2e.helpers import PageChecker, User, new_context
from tests.support.moto_server import S3_TEST_REGION
from tests.support.session_report import gathered_json_file

REQUIRE_BROWSER_VARIABLE = "MEDSIGHT_REQUIRE_BROWSER"
CHROMIUM_VARIABLE = "MEDSIGHT_CHROMIUM"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS_DIR = Path(__file__).parent / "screenshots"
# The full-page screenshots are for people to look at, not checks: taken only when asked for (about 0.2 s
# each, two per checked page), so the suite stays within its time.
SCREENSHOTS_WANTED = os.environ.get("MEDSIGHT_E2E_SCREENSHOTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


def find_chromium() -> str | None:
    """The Chromium executable: $MEDSIGHT_CHROMIUM, else chromium on PATH, else Debian's /usr/bin/chromium."""
    candidates = [os.environ.get(CHROMIUM_VARIABLE), shutil.which("chromium"), shutil.which("chromium-browser")]
    candidates.append("/usr/bin/chromium")
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def browser_required() -> bool:
    return os.environ.get(REQUIRE_BROWSER_VARIABLE, "").strip() not in ("", "0")


# -- the live server --------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    app: object


@contextmanager
def serve_app(tmp_dir: Path, **settings: str) -> Iterator[LiveServer]:
    """A testing app on a fresh SQLite database (photos as settings say), served on a free local port."""
    url, drop = make_database("sqlite", tmp_dir)
    # The whole session signs in from one address, often as one admin: rate limits are not under test here.
    app = make_app(
        url,
        tmp_dir,
        AUTH_RATE_LIMIT="6000 per minute",
        AUTH_ACCOUNT_RATE_LIMIT="6000 per minute",
        UPLOAD_RATE_LIMIT="6000 per minute",
        **settings,
    )
    migrate_to_head(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        dispose(app)
        drop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, record_backend) -> Iterator[LiveServer]:
    """The app on a fresh SQLite database and photo folder, served on a free local port for the session."""
    with serve_app(tmp_path_factory.mktemp("live")) as server:
        record_backend("sqlite")
        yield server


@pytest.fixture(scope="session")
def s3_live_server(tmp_path_factory, moto_endpoint_url) -> Iterator[LiveServer]:
    """The app as production runs it, photos in an S3 bucket (on the moto server), for the session."""
    bucket = f"medsight-e2e-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint_url, region_name=S3_TEST_REGION).create_bucket(Bucket=bucket)
    settings = {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": moto_endpoint_url, "S3_REGION": S3_TEST_REGION}
    with serve_app(tmp_path_factory.mktemp("live-s3"), **settings) as server:
        yield server


@pytest.fixture(scope="session")
def admin_user(live_server) -> User:
    """An admin, made through the user manager as `flask users create-admin` does (never through a page)."""
    user = User.fresh("Ada Admin")
    with live_server.app.app_context():
        UserManager.create(user.email, user.password, role=Role.ADMIN, full_name=user.full_name)
        db.session.remove()
    return user


@pytest.fixture
def new_user() -> User:
    return User.fresh()


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is not None:
        return path
    reason = (
        "needs Chromium (Debian package 'chromium'; or set MEDSIGHT_CHROMIUM to its executable), "
        "which is not installed here"
    )
    if browser_required():
        pytest.fail(f"{reason}; {REQUIRE_BROWSER_VARIABLE} is set, so this is a failure", pytrace=False)
    pytest.skip(f"{reason}; set {REQUIRE_BROWSER_VARIABLE}=1 to make this a failure")


@pytest.fixture(scope="session")
def browser(chromium_path, record_backend):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        record_backend("chromium")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser, live_server):
    context = new_context(browser, live_server.url)
    yield context
    context.close()


@pytest.fixture(scope="session")
def checker(pytestconfig) -> PageChecker:
    """The page checks of the whole run; their axe findings go to screenshots/axe-report.json at its end (every
    worker's, under pytest-xdist)."""
    SCREENSHOTS_DIR.mkdir(exist_ok=True)
    report = gathered_json_file(pytestconfig, SCREENSHOTS_DIR / "axe-report.json")
    return PageChecker(SCREENSHOTS_DIR, report, screenshots=SCREENSHOTS_WANTED)


@pytest.fixture
def s3_page(browser, s3_live_server, checker):
    """A page on the app that keeps its photos on S3, its console errors and failed images watched."""
    context = new_context(browser, s3_live_server.url)
    page = context.new_page()
    checker.watch(page)
    yield page
    context.close()


@pytest.fixture
def page(context, checker):
    """A fresh page (own cookies) at the desktop size, its console errors watched."""
    page = context.new_page()
    checker.watch(page)
    return page


@pytest.fixture
def other_page(browser, live_server, checker):
    """A page in a second, separate browser context: another person at another computer."""
    context = new_context(browser, live_server.url)
    page = context.new_page()
    checker.watch(page)
    yield page
    context.close()


@pytest.fixture
def check_page(checker, page):
    """check_page(name): no console error, no serious or critical axe violation at phone and desktop width (and
    their screenshots, with MEDSIGHT_E2E_SCREENSHOTS=1)."""

    def check(name: str, *, on=None) -> None:
        checker.check(on or page, name)

    return check
