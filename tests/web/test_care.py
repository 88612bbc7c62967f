"""The care loop's pages: sharing from the result page, the clinician's queue and verdict, links, the model table."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from constants import Role
from tests.web.conftest import csrf_of, page_text


@pytest.fixture
def clinician(make_account):
    return make_account(role=Role.CLINICIAN)


def test_share_from_the_result_page_and_the_clinician_reviews_it(browser, patient, clinician, uploaded):
    patient_browser = browser(patient)
    prediction_id = uploaded(patient_browser, "skin_lesion")
    result = patient_browser.get(f"/predictions/{prediction_id}")
    assert "Report (PDF)" in page_text(result) and "No clinician has reviewed this result yet." in page_text(result)
    token = csrf_of(result)
    refused = patient_browser.post(
        f"/predictions/{prediction_id}/shares", data={"csrf_token": token, "clinician_email": "nobody@example.org"}
    )
    assert refused.status_code == 422 and "only with a clinician" in page_text(refused)
    no_csrf = patient_browser.post(f"/predictions/{prediction_id}/shares", data={"clinician_email": clinician.email})
    assert no_csrf.status_code == 400
    shared = patient_browser.post(
        f"/predictions/{prediction_id}/shares", data={"csrf_token": token, "clinician_email": clinician.email}
    )
    assert shared.status_code == 303

    clinician_browser = browser(clinician)
    queue = clinician_browser.get("/reviews")
    assert queue.status_code == 200 and f"/reviews/{prediction_id}" in page_text(queue)
    page = clinician_browser.get(f"/reviews/{prediction_id}")
    assert page.status_code == 200
    assert clinician_browser.get(f"/reviews/{prediction_id}/heatmap").status_code == 200
    missing = clinician_browser.post(
        f"/reviews/{prediction_id}", data={"csrf_token": csrf_of(page), "verdict": "amend", "finding": ""}
    )
    assert missing.status_code == 422 and "Say what the finding is instead." in page_text(missing)
    recorded = clinician_browser.post(
        f"/reviews/{prediction_id}",
        data={"csrf_token": csrf_of(page), "verdict": "disagree", "comment": "Benign on dermoscopy"},
    )
    assert recorded.status_code == 303
    after = page_text(patient_browser.get(f"/predictions/{prediction_id}"))
    assert re.search(r"Reviewed by a clinician on \d+ \w+ \d{4}: disagrees — Benign on dermoscopy", after)
    assert browser(patient).get("/reviews").status_code == 403
    assert clinician_browser.get(f"/predictions/{prediction_id}").status_code == 404


def test_a_link_made_on_the_page_opens_without_an_account(app, browser, patient, admin, uploaded):
    patient_browser = browser(patient)
    prediction_id = uploaded(patient_browser, "skin_lesion")
    token = csrf_of(patient_browser.get(f"/predictions/{prediction_id}"))
    made = patient_browser.post(
        f"/predictions/{prediction_id}/links", data={"csrf_token": token, "expires_in_days": "2"}
    )
    assert made.status_code == 200
    url = re.search(r'id="link-url"[^>]*>([^<]+)<', page_text(made)).group(1)
    path = url.replace("http://localhost", "")
    opened = app.test_client().get(path)
    assert opened.status_code == 200 and opened.headers["X-Robots-Tag"].startswith("noindex")
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    listed = page_text(patient_browser.get("/links"))
    assert "1 time" in listed
    assert "No clinician has reviewed a result of this model yet." in page_text(
        browser(admin).get("/models/skin_lesion")
    )
    assert "No clinician has reviewed a result" not in page_text(patient_browser.get("/models/skin_lesion"))


def test_the_report_pages_take_the_readers_time_zone_and_say_utc_without_one(app, browser, patient, uploaded):
    def text_of(response) -> str:
        assert response.status_code == 200 and response.mimetype == "application/pdf", response.status_code
        return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(response.data)).pages)

    patient_browser = browser(patient)
    prediction_id = uploaded(patient_browser, "skin_lesion")
    result = page_text(patient_browser.get(f"/predictions/{prediction_id}"))
    assert "The report gives times in UTC." in result and 'data-report-zone="report-zone"' in result

    assert "(Asia/Kolkata)" in text_of(patient_browser.get(f"/predictions/{prediction_id}/report.pdf?tz=Asia/Kolkata"))
    assert "UTC" in text_of(patient_browser.get(f"/predictions/{prediction_id}/report.pdf"))
    # A zone the server does not know (a browser's newer tz database): the report in UTC, not an error page.
    assert "UTC" in text_of(patient_browser.get(f"/predictions/{prediction_id}/report.pdf?tz=Mars/Olympus"))

    made = patient_browser.post(
        f"/predictions/{prediction_id}/links",
        data={"csrf_token": csrf_of(patient_browser.get(f"/predictions/{prediction_id}")), "expires_in_days": "2"},
    )
    path = re.search(r"/s/[A-Za-z0-9_-]{40,}", page_text(made)).group(0)
    doctor = browser()
    assert "The report gives times in UTC." in page_text(doctor.get(path))
    assert "(America/Sao_Paulo)" in text_of(doctor.get(f"{path}/report.pdf?tz=America/Sao_Paulo"))


def test_share_a_spot_from_its_page(browser, patient, clinician, uploaded):
    patient_browser = browser(patient)
    first = uploaded(patient_browser, "skin_lesion", spot="mole")
    second = uploaded(patient_browser, "skin_lesion", spot="mole")
    spot_id = re.search(r"/spots/([0-9a-f-]{36})", patient_browser.get("/spots").get_data(as_text=True)).group(1)
    page = patient_browser.get(f"/spots/{spot_id}")
    assert "Share this spot's results" in page_text(page)
    token = csrf_of(page)
    refused = patient_browser.post(
        f"/spots/{spot_id}/shares", data={"csrf_token": token, "clinician_email": "nobody@example.org"}
    )
    assert refused.status_code == 422 and "only with a clinician" in page_text(refused)
    shared = patient_browser.post(
        f"/spots/{spot_id}/shares", data={"csrf_token": token, "clinician_email": clinician.email}
    )
    assert shared.status_code == 303
    assert "Shared 2 results." in page_text(patient_browser.get(shared.headers["Location"]))
    queue = page_text(browser(clinician).get("/reviews"))
    assert f"/reviews/{first}" in queue and f"/reviews/{second}" in queue
