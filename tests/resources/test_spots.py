"""Spots in the API: an upload names the spot it is of, the caller's spots and one spot's photos in time order,
rename and delete, other accounts' spots are 404, and a skin photo unlike the spot's earlier ones is told."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from constants import AuditAction, Role
from db import db
from models import AuditEvent, Spot
from tests.resources.helpers import assert_error
from tests.support.images import FIXTURE_IMAGES_DIR
from tests.support.synthetic import foreign_png

SKIN = "skin_lesion"
ONE_LESION = FIXTURE_IMAGES_DIR / SKIN / "akiec" / "ISIC_0024913.jpg"
OTHER_LESION = FIXTURE_IMAGES_DIR / SKIN / "mel" / "ISIC_0024496.jpg"


def test_an_upload_names_a_spot_and_the_same_name_reuses_it(client, predict, patient):
    first = predict(patient, SKIN, ONE_LESION, spot="Mole, left shoulder", body_site="back")
    assert first["spot"]["name"] == "Mole, left shoulder" and first["spot"]["body_site"] == "back"
    assert first["looks_like_other_lesion"] is None  # nothing to compare the first photo with
    again = predict(patient, SKIN, ONE_LESION, spot="  mole,   LEFT shoulder ")
    assert again["spot"]["id"] == first["spot"]["id"]
    by_id = predict(patient, SKIN, ONE_LESION, spot_id=first["spot"]["id"])
    assert by_id["spot"]["id"] == first["spot"]["id"] and by_id["looks_like_other_lesion"] is False
    plain = predict(patient, SKIN, ONE_LESION)
    assert plain["spot"] is None and plain["looks_like_other_lesion"] is None
    shown = client.get(f"/api/v1/predictions/{again['id']}", headers=patient.headers).get_json()
    assert shown["spot"] == first["spot"]

    listed = client.get("/api/v1/spots", headers=patient.headers).get_json()["items"]
    assert [(s["id"], s["name"], s["count"], s["body_site"]) for s in listed] == [
        (first["spot"]["id"], "Mole, left shoulder", 3, "back")
    ]
    detail = client.get(f"/api/v1/spots/{first['spot']['id']}", headers=patient.headers).get_json()
    assert [p["id"] for p in detail["predictions"]] == [first["id"], again["id"], by_id["id"]]  # oldest first
    assert detail["count"] == 3 and detail["modality"] == SKIN


def test_a_photo_of_another_lesion_is_told(predict, patient):
    first = predict(patient, SKIN, ONE_LESION, spot="freckle")
    other = predict(patient, SKIN, OTHER_LESION, spot="freckle")
    assert first["looks_like_other_lesion"] is None
    assert other["looks_like_other_lesion"] is True
    same = predict(patient, SKIN, ONE_LESION, spot="freckle")
    assert same["looks_like_other_lesion"] is False  # the nearest earlier photo is the same lesion's


def test_a_spot_follows_one_kind_of_image(upload, predict, patient):
    predict(patient, SKIN, ONE_LESION, spot="arm")
    refused = upload(patient, "chest_xray", spot="arm")
    assert_error(refused, 422, "spot_modality_mismatch")


def spot_names(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Spot.name)))


def test_a_refused_upload_leaves_no_spot(app, client, upload, patient):
    refused = upload(patient, SKIN, data=foreign_png("text page"), filename="photo.png", spot="new mole")
    assert_error(refused, 422, "not_a_medical_image")
    assert spot_names(app) == []
    assert client.get("/api/v1/spots", headers=patient.headers).get_json()["items"] == []


def test_an_upload_whose_record_cannot_be_written_leaves_no_spot(app, upload, patient, failing_prediction_commit):
    assert_error(upload(patient, SKIN, ONE_LESION, spot="new mole", body_site="back"), 503, "database_unavailable")
    assert failing_prediction_commit == [True]
    assert spot_names(app) == []


def test_spot_form_fields_are_checked(upload, patient):
    assert_error(upload(patient, SKIN, ONE_LESION, spot="a", spot_id=str(uuid.uuid4())), 422)
    assert_error(upload(patient, SKIN, ONE_LESION, spot="   "), 422)
    assert_error(upload(patient, SKIN, ONE_LESION, spot="x" * 81), 422)
    assert_error(upload(patient, SKIN, ONE_LESION, spot="a", body_site="elbow"), 422)
    assert_error(upload(patient, SKIN, ONE_LESION, spot_id=str(uuid.uuid4())), 404)


def test_other_accounts_spot_is_404(client, upload, predict, patient, make_account):
    mine = predict(patient, SKIN, ONE_LESION, spot="neck")["spot"]["id"]
    other = make_account()
    assert client.get("/api/v1/spots", headers=other.headers).get_json()["items"] == []
    assert_error(client.get(f"/api/v1/spots/{mine}", headers=other.headers), 404)
    assert_error(client.patch(f"/api/v1/spots/{mine}", json={"name": "mine"}, headers=other.headers), 404)
    assert_error(client.delete(f"/api/v1/spots/{mine}", headers=other.headers), 404)
    assert_error(upload(other, SKIN, ONE_LESION, spot_id=mine), 404)
    # The same name in another account is another spot.
    theirs = predict(other, SKIN, ONE_LESION, spot="neck")["spot"]["id"]
    assert theirs != mine


def test_rename_and_a_name_already_taken(app, client, predict, patient):
    neck = predict(patient, SKIN, ONE_LESION, spot="neck")["spot"]["id"]
    predict(patient, SKIN, ONE_LESION, spot="back")
    renamed = client.patch(
        f"/api/v1/spots/{neck}", json={"name": "Neck, left", "body_site": "neck"}, headers=patient.headers
    )
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["name"] == "Neck, left" and renamed.get_json()["body_site"] == "neck"
    assert_error(client.patch(f"/api/v1/spots/{neck}", json={"name": "BACK"}, headers=patient.headers), 409)
    assert_error(client.patch(f"/api/v1/spots/{neck}", json={}, headers=patient.headers), 422)
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == neck)).all()
    assert actions == [AuditAction.SPOT_RENAME.value]


def test_deleting_a_spot_keeps_its_photos_unlinked(client, predict, patient):
    made = predict(patient, SKIN, ONE_LESION, spot="shin")
    spot_id = made["spot"]["id"]
    assert client.delete(f"/api/v1/spots/{spot_id}", headers=patient.headers).status_code == 204
    assert_error(client.get(f"/api/v1/spots/{spot_id}", headers=patient.headers), 404)
    kept = client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers)
    assert kept.status_code == 200 and kept.get_json()["spot"] is None
    # The name is free again: a new spot.
    assert predict(patient, SKIN, ONE_LESION, spot="shin")["spot"]["id"] != spot_id


def share_spot(client, owner, spot_id, email):
    return client.post(f"/api/v1/spots/{spot_id}/shares", json={"clinician_email": email}, headers=owner.headers)


def test_sharing_a_spot_shares_the_results_it_has_now(app, client, predict, patient, make_account):
    clinician = make_account(role=Role.CLINICIAN)
    first = predict(patient, SKIN, ONE_LESION, spot="mole")
    second = predict(patient, SKIN, ONE_LESION, spot="mole")
    predict(patient, SKIN, ONE_LESION, spot="other")
    single = client.post(
        f"/api/v1/predictions/{second['id']}/shares", json={"clinician_email": clinician.email}, headers=patient.headers
    ).get_json()

    response = share_spot(client, patient, first["spot"]["id"], clinician.email.upper())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["spot_id"] == first["spot"]["id"] and body["clinician_email"] == clinician.email
    assert [s["prediction_id"] for s in body["shares"]] == [first["id"], second["id"]]  # oldest first
    assert body["shares"][1]["id"] == single["id"]  # one already shared keeps its share
    again = share_spot(client, patient, first["spot"]["id"], clinician.email).get_json()
    assert [s["id"] for s in again["shares"]] == [s["id"] for s in body["shares"]]
    queue = client.get("/api/v1/reviews/queue", headers=clinician.headers).get_json()["items"]
    assert sorted(item["prediction"]["id"] for item in queue) == sorted([first["id"], second["id"]])
    with app.app_context():
        created = db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == AuditAction.SHARE_CREATE.value, AuditEvent.target_id == first["id"]
            )
        ).all()
    assert [event.details["spot_id"] for event in created] == [first["spot"]["id"]]

    # A photo added later is not shared until the spot is shared again.
    later = predict(patient, SKIN, ONE_LESION, spot="mole")
    assert_error(client.get(f"/api/v1/reviews/{later['id']}", headers=clinician.headers), 404)
    # Each share is revoked on its own.
    revoke = f"/api/v1/predictions/{first['id']}/shares/{body['shares'][0]['id']}"
    assert client.delete(revoke, headers=patient.headers).status_code == 204
    assert_error(client.get(f"/api/v1/reviews/{first['id']}", headers=clinician.headers), 404)
    assert client.get(f"/api/v1/reviews/{second['id']}", headers=clinician.headers).status_code == 200


def test_sharing_a_spot_is_refused_like_a_single_share(client, predict, patient, make_account):
    spot_id = predict(patient, SKIN, ONE_LESION, spot="mole")["spot"]["id"]
    other_patient = make_account()
    errors = [
        assert_error(share_spot(client, patient, spot_id, email), 422, "not_a_clinician")
        for email in (other_patient.email, "nobody-at-all@example.org")
    ]
    assert errors[0]["message"] == errors[1]["message"] and errors[0]["details"] == errors[1]["details"] == {}
    assert_error(share_spot(client, patient, spot_id, ""), 422)
    clinician = make_account(role=Role.CLINICIAN)
    assert_error(share_spot(client, other_patient, spot_id, clinician.email), 404)
    assert_error(share_spot(client, patient, uuid.uuid4(), clinician.email), 404)
    assert client.get("/api/v1/reviews/queue", headers=clinician.headers).get_json()["items"] == []
