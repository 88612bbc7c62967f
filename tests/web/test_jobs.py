"""The batch job pages: send an archive, read its progress (as HTML and as the page's JSON), results, cancel."""

from __future__ import annotations

import csv
import io

import pytest

from managers.job_scoring import JobScoring
from tests.support.jobs import fixture_images, zip_of
from tests.web.conftest import csrf_of, page_text
from utils.result_files import RESULT_COLUMNS


@pytest.fixture
def archive(installed_modalities) -> bytes:
    images = [*fixture_images(["skin_lesion"])[:2], fixture_images(["breast"])[0]]
    return zip_of([*images, ("notes/readme.txt", b"not an image")])


def _send(client, archive: bytes, **form: str):
    token = csrf_of(client.get("/jobs"))
    data = {"file": (io.BytesIO(archive), "batch.zip"), "csrf_token": token, "modality": "auto", **form}
    return client.post("/jobs", data=data, content_type="multipart/form-data")


def test_jobs_page_is_in_the_navigation_and_offers_the_form(patient_browser):
    text = page_text(patient_browser.get("/history"))
    assert 'href="/jobs"' in text
    page = patient_browser.get("/jobs")
    assert page.status_code == 200
    text = page_text(page)
    assert 'enctype="multipart/form-data"' in text and 'name="csrf_token"' in text
    assert "No jobs yet" in text
    assert "<script>" not in text  # scripts come from static/ only (CSP)


def test_a_sent_archive_leads_to_its_page_with_results_and_reasons(patient_browser, archive):
    response = _send(patient_browser, archive, note="clinic batch")
    assert response.status_code == 303, page_text(response)[:800]
    job_page = patient_browser.get(response.headers["Location"])
    text = page_text(job_page)
    assert job_page.status_code == 200
    assert "Finished" in text and "clinic batch" in text
    assert "Download results (CSV)" in text
    assert "notes/readme.txt" in text and "Not an image MedSight reads" in text
    assert 'http-equiv="refresh"' not in text  # a finished job does not refresh itself

    listing = page_text(patient_browser.get("/jobs"))
    assert response.headers["Location"] in listing

    progress = patient_browser.get(response.headers["Location"] + "/progress").get_json()
    assert (progress["status"], progress["total"], progress["scored"], progress["failed"]) == ("done", 4, 3, 1)
    assert progress["percent"] == 100 and progress["active"] is False

    results = patient_browser.get(response.headers["Location"] + "/results.csv")
    assert results.status_code == 200 and results.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(results.get_data(as_text=True))))
    assert list(rows[0]) == [*RESULT_COLUMNS] and len(rows) == 4


def test_a_running_job_shows_progress_refreshes_without_script_and_can_be_cancelled(
    app, patient_browser, archive, recording_queue
):
    location = _send(patient_browser, archive).headers["Location"]
    text = page_text(patient_browser.get(location))
    assert "Waiting to start" in text
    assert '<noscript><meta http-equiv="refresh"' in text and 'id="job-refresh"' in text
    assert patient_browser.get(location + "/progress").get_json()["eta_seconds"] is None

    job_id, chunk_key = recording_queue.chunks[0]
    with app.app_context():
        JobScoring.score_chunk(job_id, chunk_key)
    progress = patient_browser.get(location + "/progress").get_json()
    assert progress["status"] == "done"  # one chunk held every image

    cancel_form = page_text(patient_browser.get(location))
    assert 'action="' + location + '/cancel"' not in cancel_form  # nothing left to cancel


def test_cancel_takes_the_sessions_csrf_and_drops_what_is_pending(patient_browser, archive, recording_queue):
    location = _send(patient_browser, archive).headers["Location"]
    refused = patient_browser.post(location + "/cancel", data={})
    assert refused.status_code == 400
    token = csrf_of(patient_browser.get(location))
    done = patient_browser.post(location + "/cancel", data={"csrf_token": token})
    assert done.status_code == 303
    progress = patient_browser.get(location + "/progress").get_json()
    assert (progress["status"], progress["total"], progress["scored"]) == ("cancelled", 0, 0)


def test_a_refused_archive_is_said_in_words_and_nothing_is_kept(patient_browser):
    response = _send(patient_browser, b"PK\x03\x04 a damaged zip")
    assert response.status_code in (415, 422)
    text = page_text(response)
    assert "The job was not started" in text
    assert "No jobs yet" in text


def test_someone_elses_job_page_is_not_found(patient_browser, browser, make_account, archive):
    location = _send(patient_browser, archive).headers["Location"]
    other = browser(make_account(full_name="Other One"))
    for path in (location, location + "/progress", location + "/results.csv"):
        assert other.get(path).status_code == 404
    token = csrf_of(other.get("/jobs"))
    assert other.post(location + "/cancel", data={"csrf_token": token}).status_code == 404


def test_too_many_running_jobs_are_refused_with_429(app, patient_browser, archive, recording_queue, monkeypatch):
    monkeypatch.setitem(app.config, "JOB_MAX_ACTIVE_PER_ACCOUNT", 1)
    assert _send(patient_browser, archive).status_code == 303
    refused = _send(patient_browser, archive)
    assert refused.status_code == 429
    assert "At most 1 jobs" in page_text(refused)
