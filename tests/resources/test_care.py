"""The care loop in the API: clinicians, shares, reviews, the queue, agreement per model version, the report PDF
and share links for a doctor without an account."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select, update

from cnn_model.modalities import get_spec
from constants import PREDICTION_DISCLAIMER, AuditAction, Role
from db import db
from models import AuditEvent, Prediction, ShareLink, utcnow
from tests.resources.helpers import assert_error


@pytest.fixture
def clinician(make_account):
    return make_account(role=Role.CLINICIAN, full_name="Dr Clin")


def share(client, owner, prediction_id, email):
    return client.post(
        f"/api/v1/predictions/{prediction_id}/shares", json={"clinician_email": email}, headers=owner.headers
    )


def audit_actions(app, target_id) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == str(target_id))))


def test_the_command_line_and_an_admin_make_a_clinician(app, client, admin, make_account):
    first, second = make_account(), make_account()
    result = app.test_cli_runner().invoke(args=["users", "set-role", first.email, "clinician"])
    assert result.exit_code == 0, result.output
    assert f"{first.email} is now clinician." in result.output
    response = client.patch(f"/api/v1/admin/users/{second.id}", json={"role": "clinician"}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["role"] == "clinician"


def test_share_review_and_the_patient_sees_the_review(app, client, predict, patient, clinician, modality):
    made = predict(patient, modality)
    assert made["review"] is None
    response = share(client, patient, made["id"], clinician.email.upper())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["clinician_email"] == clinician.email and body["prediction_id"] == made["id"]
    again = share(client, patient, made["id"], clinician.email)
    assert again.status_code == 201 and again.get_json()["id"] == body["id"]

    queue = client.get("/api/v1/reviews/queue", headers=clinician.headers).get_json()["items"]
    assert [item["prediction"]["id"] for item in queue] == [made["id"]] and queue[0]["reviewed_at"] is None
    opened = client.get(f"/api/v1/reviews/{made['id']}", headers=clinician.headers)
    assert opened.status_code == 200
    shown = opened.get_json()
    assert shown["probabilities"] == made["probabilities"] and shown["prediction_set"] == made["prediction_set"]
    assert shown["image_url"] == f"/api/v1/reviews/{made['id']}/image"
    assert client.get(shown["image_url"], headers=clinician.headers).status_code in (200, 302)

    verdict = client.post(
        f"/api/v1/predictions/{made['id']}/reviews",
        json={"verdict": "agree", "comment": "Typical appearance; see you in six months."},
        headers=clinician.headers,
    )
    assert verdict.status_code == 201, verdict.get_json()
    assert verdict.get_json()["finding"] == made["label"]

    review = client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers).get_json()["review"]
    assert review["verdict"] == "agree" and review["finding"] == made["label"]
    assert review["comment"] == "Typical appearance; see you in six months." and review["reviewed_at"]
    listed = client.get("/api/v1/predictions", headers=patient.headers).get_json()["items"][0]
    assert listed["review"] == review
    actions = audit_actions(app, made["id"])
    assert actions.count(AuditAction.REVIEW_OPEN.value) == 2  # the record and its image
    assert AuditAction.REVIEW_CREATE.value in actions and AuditAction.SHARE_CREATE.value in actions
    queued = client.get("/api/v1/reviews/queue", headers=clinician.headers).get_json()["items"]
    assert queued[0]["reviewed_at"] is not None


def test_sharing_with_an_address_that_is_no_clinicians_says_the_same_whatever_exists(
    client, predict, patient, make_account, modality
):
    made = predict(patient, modality)
    other_patient = make_account()
    errors = [
        assert_error(share(client, patient, made["id"], email), 422, "not_a_clinician")
        for email in (other_patient.email, "nobody-at-all@example.org")
    ]
    assert errors[0]["message"] == errors[1]["message"] and errors[0]["details"] == errors[1]["details"] == {}


def test_a_clinician_sees_only_what_is_shared_and_revoking_hides_it_at_once(
    client, predict, patient, clinician, make_account, modality
):
    made = predict(patient, modality)
    urls = (f"/api/v1/reviews/{made['id']}", f"/api/v1/reviews/{made['id']}/image")
    for url in urls:
        assert_error(client.get(url, headers=clinician.headers), 404)
    review_url = f"/api/v1/predictions/{made['id']}/reviews"
    assert_error(client.post(review_url, json={"verdict": "agree"}, headers=clinician.headers), 404)
    assert_error(client.get(f"/api/v1/predictions/{made['id']}", headers=clinician.headers), 404)

    share_id = share(client, patient, made["id"], clinician.email).get_json()["id"]
    other_clinician = make_account(role=Role.CLINICIAN)
    assert_error(client.get(urls[0], headers=other_clinician.headers), 404)
    assert client.get(urls[0], headers=clinician.headers).status_code == 200
    stranger = make_account()
    revoke_url = f"/api/v1/predictions/{made['id']}/shares/{share_id}"
    assert_error(client.delete(revoke_url, headers=stranger.headers), 404)
    assert client.delete(revoke_url, headers=patient.headers).status_code == 204
    for url in urls:
        assert_error(client.get(url, headers=clinician.headers), 404)
    assert_error(client.post(review_url, json={"verdict": "agree"}, headers=clinician.headers), 404)
    assert client.get("/api/v1/reviews/queue", headers=clinician.headers).get_json()["items"] == []
    assert_error(client.delete(revoke_url, headers=patient.headers), 404)


def test_patients_and_admins_have_no_review_queue(client, patient, admin):
    assert_error(client.get("/api/v1/reviews/queue", headers=patient.headers), 403)
    assert_error(client.get("/api/v1/reviews/queue", headers=admin.headers), 403)


def test_the_queue_puts_flagged_and_uncertain_first_and_oldest_first_within(
    app, client, predict, patient, clinician, modality
):
    made = [predict(patient, modality)["id"] for _ in range(4)]
    states = {
        made[0]: (False, "clear"),
        made[1]: (True, "clear"),
        made[2]: (False, "uncertain"),
        made[3]: (True, "clear"),
    }
    with app.app_context():
        for prediction_id, (flagged, certainty) in states.items():
            db.session.execute(
                update(Prediction)
                .where(Prediction.id == uuid.UUID(prediction_id))
                .values(is_positive=flagged, certainty=certainty)
            )
        db.session.commit()
    for prediction_id in reversed(made):
        share(client, patient, prediction_id, clinician.email)
    queue = client.get("/api/v1/reviews/queue", headers=clinician.headers).get_json()["items"]
    assert [item["prediction"]["id"] for item in queue] == [made[1], made[3], made[2], made[0]]


def test_a_verdict_is_checked(client, predict, patient, clinician, modality):
    made = predict(patient, modality)
    share(client, patient, made["id"], clinician.email)
    url = f"/api/v1/predictions/{made['id']}/reviews"
    assert_error(client.post(url, json={"verdict": "amend"}, headers=clinician.headers), 422)
    assert_error(client.post(url, json={"verdict": "maybe"}, headers=clinician.headers), 422)
    assert_error(client.post(url, json={"verdict": "disagree", "finding": "no_such"}, headers=clinician.headers), 422)
    other = next(name for name in get_spec(modality).class_names if name != made["label"])
    response = client.post(url, json={"verdict": "disagree", "finding": other}, headers=clinician.headers)
    assert response.status_code == 201
    amended = client.post(url, json={"verdict": "amend", "finding": "Seborrhoeic wart"}, headers=clinician.headers)
    assert amended.status_code == 201
    assert (
        client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers).get_json()["review"]["verdict"]
        == "amend"
    )


def test_admins_see_agreement_per_model_version(client, predict, patient, clinician, admin, modality):
    made = [predict(patient, modality) for _ in range(3)]
    for prediction, verdict in zip(made, ("agree", "agree", "amend"), strict=True):
        share(client, patient, prediction["id"], clinician.email)
        body = {"verdict": verdict, "finding": "Something else" if verdict == "amend" else None}
        client.post(f"/api/v1/predictions/{prediction['id']}/reviews", json=body, headers=clinician.headers)
    response = client.get(f"/api/v1/models/{modality}/reviews", headers=admin.headers)
    assert response.status_code == 200
    versions = response.get_json()["versions"]
    assert versions == [
        {
            "model_version": made[0]["model"]["version"],
            "reviews": 3,
            "agree": 2,
            "disagree": 0,
            "amend": 1,
            "agreement": pytest.approx(2 / 3),
        }
    ]
    assert_error(client.get(f"/api/v1/models/{modality}/reviews", headers=patient.headers), 403)
    assert_error(client.get("/api/v1/models/no_such/reviews", headers=admin.headers), 404)


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_the_report_is_one_page_with_the_finding_the_version_and_the_disclaimer(
    client, predict, patient, clinician, modality
):
    made = predict(patient, modality, note="Noticed it in March")
    share(client, patient, made["id"], clinician.email)
    client.post(
        f"/api/v1/predictions/{made['id']}/reviews",
        json={"verdict": "agree", "comment": "Fine"},
        headers=clinician.headers,
    )
    response = client.get(f"/api/v1/predictions/{made['id']}/report.pdf?tz=Europe/Paris", headers=patient.headers)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "no-store" in response.headers["Cache-Control"]
    pages, text = pdf_text(response.data)
    assert pages == 1
    spec = get_spec(modality)
    assert spec.class_spec(made["label"]).display_name in text
    assert f"version {made['model']['version']}" in text
    assert " ".join(PREDICTION_DISCLAIMER.split()) in text
    assert "(Europe/Paris)" in text and "Reviewed by a clinician on" in text and "Noticed it in March" in text
    utc = client.get(f"/api/v1/predictions/{made['id']}/report.pdf", headers=patient.headers)
    assert "UTC" in pdf_text(utc.data)[1]
    bad_zone = client.get(f"/api/v1/predictions/{made['id']}/report.pdf?tz=Mars/Olympus", headers=patient.headers)
    assert_error(bad_zone, 422)
    assert_error(client.get(f"/api/v1/predictions/{made['id']}/report.pdf", headers=clinician.headers), 404)


def test_a_share_link_opens_one_result_without_an_account_until_revoked(app, client, predict, patient, modality):
    made = predict(patient, modality)
    response = client.post(f"/api/v1/predictions/{made['id']}/links", json={}, headers=patient.headers)
    assert response.status_code == 201, response.get_json()
    link = response.get_json()
    assert link["url"].startswith("http://localhost/s/") and link["id"]
    with app.app_context():
        stored = db.session.get(ShareLink, uuid.UUID(link["id"]))
        token = link["url"].rsplit("/", 1)[1]
        assert token not in stored.token_hash and len(token) >= 40
        assert timedelta(days=6, hours=23) < stored.expires_at - utcnow() <= timedelta(days=7)
    path = "/s/" + token
    anonymous = app.test_client()
    page = anonymous.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store" and "noindex" in page.headers["X-Robots-Tag"]
    assert made["note"] is None or made["note"] not in page.get_data(as_text=True)
    assert anonymous.get(path + "/image").status_code == 200
    assert anonymous.get(path + "/report.pdf").mimetype == "application/pdf"
    with app.app_context():
        opens = db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action.in_([AuditAction.SHARE_LINK_OPEN.value, AuditAction.SHARE_LINK_IMAGE.value])
            )
        ).all()
        assert sorted(event.details["what"] for event in opens) == ["image", "record", "report"]
        assert all(event.ip is None and event.actor_id is None for event in opens)
    listed = client.get(f"/api/v1/predictions/{made['id']}/links", headers=patient.headers).get_json()
    assert [item["id"] for item in listed] == [link["id"]] and "url" not in listed[0]

    revoked = client.delete(f"/api/v1/predictions/{made['id']}/links/{link['id']}", headers=patient.headers)
    assert revoked.status_code == 204
    for url in (path, path + "/image", path + "/report.pdf", "/s/not-a-token"):
        gone = anonymous.get(url)
        assert gone.status_code == 410 and "no longer valid" in gone.get_data(as_text=True)
    assert client.get(f"/api/v1/predictions/{made['id']}/links", headers=patient.headers).get_json() == []


def test_an_expired_link_is_gone_and_lifetimes_are_checked(app, client, predict, patient, make_account, modality):
    made = predict(patient, modality)
    url = f"/api/v1/predictions/{made['id']}/links"
    for days in (0, 31, "x"):
        assert_error(client.post(url, json={"expires_in_days": days}, headers=patient.headers), 422)
    assert_error(client.post(url, json={}, headers=make_account().headers), 404)
    link = client.post(url, json={"expires_in_days": 1}, headers=patient.headers).get_json()
    with app.app_context():
        db.session.execute(
            update(ShareLink).where(ShareLink.id == uuid.UUID(link["id"])).values(expires_at=utcnow() - timedelta(1))
        )
        db.session.commit()
    assert app.test_client().get(link["url"].replace("http://localhost", "")).status_code == 410


def test_the_fhir_report_turns_final_when_a_clinician_agrees_and_amended_when_not(client, predict, patient, clinician):
    agreed, amended = predict(patient, "skin_lesion"), predict(patient, "skin_lesion")
    for made, verdict in (
        (agreed, {"verdict": "agree"}),
        (amended, {"verdict": "amend", "finding": "Seborrhoeic wart"}),
    ):
        status = _report(client, patient, made["id"])["status"]
        assert status == "preliminary"
        assert share(client, patient, made["id"], clinician.email).status_code == 201
        response = client.post(f"/api/v1/predictions/{made['id']}/reviews", json=verdict, headers=clinician.headers)
        assert response.status_code == 201, response.get_json()
    assert _report(client, patient, agreed["id"])["status"] == "final"
    report = _report(client, patient, amended["id"])
    assert report["status"] == "amended" and "amends it: Seborrhoeic wart" in report["conclusion"]


def _report(client, owner, prediction_id) -> dict:
    bundle = client.get(f"/api/v1/predictions/{prediction_id}/fhir", headers=owner.headers).get_json()
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
