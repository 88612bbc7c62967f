"""Batch jobs in the browser: send an archive from the Jobs page and watch its progress page follow the job."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from db import db
from managers.job_scoring import JobScoring
from tests.e2e.helpers import UUID_PATTERN, image_loaded, register
from tests.support.jobs import RecordingQueue, fixture_images, zip_of

JOB_URL = re.compile(rf"/jobs/{UUID_PATTERN}$")
PROGRESS_TIMEOUT_MS = 20_000


@pytest.fixture
def held_queue(live_server, monkeypatch):
    """Chunks are kept, not scored, until the test scores them: the page can be watched in between."""
    queue = RecordingQueue()
    monkeypatch.setitem(live_server.app.extensions, "job_queue", queue)
    monkeypatch.setitem(live_server.app.config, "JOB_CHUNK_SIZE", 2)
    return queue


def _score(app, chunk) -> None:
    with app.app_context():
        JobScoring.score_chunk(*chunk)
        db.session.remove()


def test_progress_page_follows_the_job_without_reloading(page, new_user, check_page, live_server, held_queue, tmp_path):
    images = [*fixture_images(["skin_lesion"])[:2], fixture_images(["breast"])[0]]
    archive = tmp_path / "clinic.zip"
    archive.write_bytes(zip_of([*images, ("notes/readme.txt", b"not an image")]))
    register(page, new_user)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    check_page("jobs")
    page.get_by_label("Zip archive of images").set_input_files(archive)
    page.get_by_role("button", name="Start the job").click()
    page.wait_for_url(JOB_URL)

    expect(page.locator("#job-status")).to_have_text("Waiting to start")
    expect(page.locator("#job-total")).to_have_text("4")
    expect(page.get_by_role("link", name="Download results (CSV)")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    check_page("job-progress")
    page.evaluate("window.stillTheSamePage = true")

    assert len(held_queue.chunks) == 2
    _score(live_server.app, held_queue.chunks[0])
    expect(page.locator("#job-settled")).to_have_text("2", timeout=PROGRESS_TIMEOUT_MS)
    expect(page.locator("#job-status")).to_have_text("Scoring")
    expect(page.locator("#job-percent")).to_have_text("50%")
    expect(page.locator("#job-eta")).to_contain_text("left")
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded instead of updating"

    _score(live_server.app, held_queue.chunks[1])
    # Once the job ends the page loads its lists of results once.
    expect(page.locator("#job-status")).to_have_text("Finished", timeout=PROGRESS_TIMEOUT_MS)
    expect(page.get_by_role("cell", name="Not an image MedSight reads", exact=False)).to_be_visible(
        timeout=PROGRESS_TIMEOUT_MS
    )
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    for thumbnail in page.locator(".job-review img").all():
        assert image_loaded(thumbnail), thumbnail.get_attribute("src")
    check_page("job-done")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download results (CSV)").click()
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert lines[0].startswith("name,sha256,prediction_id") and len(lines) == 5
