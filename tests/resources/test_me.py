"""A person's own data: GET /api/v1/me/export (one zip of everything), DELETE /api/v1/me (all of it gone), and the
same for an admin acting on an account. Nothing of a deleted account remains in the database or in storage."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import boto3
import sqlalchemy as sa
from pydicom import dcmread

from db import db
from managers import sign_in_backoff
from managers.sign_in_backoff import FREE_FAILURES
from tests.resources.helpers import assert_error, bearer
from tests.support.dicom import IDENTITY, xray_dicom
from tests.support.images import sample_image
from tests.support.predictions import stored_files

ME, EXPORT = "/api/v1/me", "/api/v1/me/export"


def traces_in_database(app, *traces: str) -> list[str]:
    """Every table cell (as text) that contains one of traces."""
    found = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(sa.select(table)):
                for column, value in row._mapping.items():
                    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
                    text += f" {value.hex}" if isinstance(value, uuid.UUID) else ""
                    found += [f"{table.name}.{column}: {trace}" for trace in traces if trace in text]
    return found


def account_traces(account, prediction_ids=()) -> list[str]:
    user_id = uuid.UUID(account.id)
    return [str(user_id), user_id.hex, account.email, "Pat Ient", *prediction_ids]


def make_history(client, upload, account) -> list[str]:
    """Two predictions (a JPEG and a DICOM), a viewed heatmap, a token, a logout: a little of everything."""
    ids = []
    for data, name in (
        (sample_image("skin_lesion").read_bytes(), "lesion.jpg"),
        (xray_dicom(sample_image("chest_xray")), "x.dcm"),
    ):
        response = upload(account, None, data=data, filename=name)
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    assert client.get(f"/api/v1/predictions/{ids[0]}/heatmap", headers=account.headers).status_code == 200
    assert client.post("/api/v1/tokens", json={"name": "script"}, headers=account.headers).status_code == 201
    client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}, headers=bearer(account.refresh_token)
    )
    return ids


def test_the_export_holds_the_account_every_prediction_and_every_file(client, upload, patient, storage_root):
    ids = make_history(client, upload, patient)
    response = client.get(EXPORT, headers=patient.headers)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"] and "no-store" in response.headers["Cache-Control"]
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    document = json.loads(archive.read("account.json"))
    assert document["account"]["email"] == patient.email and document["account"]["full_name"] == "Pat Ient"
    assert "password" not in json.dumps(document) and "token_hash" not in json.dumps(document)
    assert [t["name"] for t in document["personal_access_tokens"]] == ["script"]
    assert sorted(p["id"] for p in document["predictions"]) == sorted(ids)
    for prediction in document["predictions"]:
        assert set(prediction["model"]) == {"name", "version", "sha256", "card"}
        assert prediction["model"]["card"]["metrics"]["val"]["n"] > 0  # the card of the model that answered
        assert prediction["label"] in prediction["probabilities"] and 0 <= prediction["positive_probability"] <= 1
        assert {"image", "heatmap"} <= set(prediction["files"])  # a heatmap not viewed yet is drawn for the export
        for name in prediction["files"].values():
            assert archive.read(name)
    dicom_entry = next(p for p in document["predictions"] if p["modality"] == "chest_xray")
    kept = dcmread(io.BytesIO(archive.read(dicom_entry["files"]["original"])))
    assert kept.PatientIdentityRemoved == "YES"
    assert not any(value.encode() in archive.read(dicom_entry["files"]["original"]) for value in IDENTITY.values())
    assert {"auth.register", "auth.login", "prediction.create"} <= {a["action"] for a in document["activity"]}


def test_the_export_tells_of_failed_sign_ins_but_not_whose_address_made_them(client, patient):
    attempt = {"email": patient.email, "password": "not-my-password-1"}
    client.post("/api/v1/auth/login", json=attempt, environ_base={"REMOTE_ADDR": "127.0.0.77"})
    response = client.get(EXPORT, headers=patient.headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    document = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("account.json"))
    (failed,) = [a for a in document["activity"] if a["action"] == "auth.login_failed"]
    assert failed["at"] and failed["ip"] is None
    assert "127.0.0.77" not in json.dumps(document)
    (signed_in,) = [a for a in document["activity"] if a["action"] == "auth.login"]
    assert signed_in["ip"] == "127.0.0.1"  # the owner's own addresses are the owner's data


def test_deleting_your_account_leaves_nothing_of_you(app, client, upload, patient, storage_root):
    ids = make_history(client, upload, patient)
    assert stored_files(storage_root)
    assert_error(client.delete(ME, json={"password": "not-my-password-1"}, headers=patient.headers), 422)
    assert traces_in_database(app, patient.email)  # a wrong password changes nothing

    assert client.delete(ME, json={"password": patient.password}, headers=patient.headers).status_code == 204

    assert stored_files(storage_root) == []
    assert traces_in_database(app, *account_traces(patient, ids)) == []
    assert_error(client.get("/api/v1/auth/me", headers=patient.headers), 401, "account_disabled")
    with app.app_context():
        events = db.session.execute(
            sa.text("SELECT actor_id, target_id, ip, details FROM audit_events WHERE action = 'account.delete'")
        ).all()
    assert len(events) == 1
    actor_id, target_id, ip, details = events[0]
    assert actor_id is None and target_id is None and ip is None
    details = details if isinstance(details, dict) else json.loads(details)
    assert details == {"by": "self", "predictions": 2, "spots": 0, "stored_objects": 5, "tokens": 1}


def test_deleting_takes_a_login_and_the_password(client, patient):
    token = client.post("/api/v1/tokens", json={"name": "script"}, headers=patient.headers).get_json()["token"]
    assert_error(client.delete(ME, json={"password": patient.password}, headers=bearer(token)), 403, "login_required")
    assert_error(client.delete(ME, json={}, headers=patient.headers), 422, "validation_error")
    assert_error(client.delete(ME, json={"password": patient.password}), 401, "token_missing")


def test_wrong_passwords_are_slowed_down_like_failed_sign_ins_then_the_right_one_deletes(
    app, client, monkeypatch, patient
):
    # A one-second first wait, so the test can sit it out.
    monkeypatch.setattr(sign_in_backoff, "FIRST_DELAY_SECONDS", 1)
    for _ in range(FREE_FAILURES + 1):  # the last one starts the wait
        assert_error(client.delete(ME, json={"password": "wrong-guess-1"}, headers=patient.headers), 422)

    waiting = client.delete(ME, json={"password": patient.password}, headers=patient.headers)

    error = assert_error(waiting, 429, "too_many_requests")  # even the right password waits
    assert error["details"]["retry_after"] > 0 and int(waiting.headers["Retry-After"]) > 0
    assert traces_in_database(app, patient.email)  # the account is still there
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 200
    # The same per-account wait holds back sign-in.
    refused = client.post("/api/v1/auth/login", json={"email": patient.email, "password": patient.password})
    assert_error(refused, 429, "too_many_requests")

    time.sleep(error["details"]["retry_after"] + 0.2)
    assert client.delete(ME, json={"password": patient.password}, headers=patient.headers).status_code == 204

    assert traces_in_database(app, patient.email) == []
    # The deletion reset the back-off: an account opened again under the email does not inherit the wait.
    again = {"email": patient.email, "password": patient.password}
    assert client.post("/api/v1/auth/register", json=again).status_code == 201
    wrong = client.post("/api/v1/auth/login", json={**again, "password": "wrong-guess-1"})
    assert_error(wrong, 401, "invalid_credentials")
    assert client.post("/api/v1/auth/login", json=again).status_code == 200


def test_deleting_is_limited_per_account_like_sign_in(client, app, patient):
    limit = int(app.config["AUTH_ACCOUNT_RATE_LIMIT"].split()[0])
    for n in range(limit):  # from different addresses, so only the per-account limit can refuse
        other_address = {"REMOTE_ADDR": f"10.8.0.{n + 1}"}
        # Malformed, so nothing is deleted, yet every try counts.
        assert client.delete(ME, json={}, headers=patient.headers, environ_base=other_address).status_code == 422
    refused = client.delete(ME, json={"password": patient.password}, headers=patient.headers)
    assert_error(refused, 429, "too_many_requests")
    assert "Retry-After" in refused.headers
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 200


def test_an_admin_deletes_an_account_and_the_trail_keeps_who_did(app, client, upload, patient, admin, storage_root):
    ids = make_history(client, upload, patient)
    assert client.get(f"/api/v1/admin/predictions/{ids[0]}", headers=admin.headers).status_code == 200
    export = client.get(f"/api/v1/admin/users/{patient.id}/export", headers=admin.headers)
    assert export.status_code == 200 and zipfile.ZipFile(io.BytesIO(export.data)).read("account.json")

    assert client.delete(f"/api/v1/admin/users/{patient.id}", headers=admin.headers).status_code == 204

    assert stored_files(storage_root) == []
    assert traces_in_database(app, *account_traces(patient, ids)) == []
    audit = client.get("/api/v1/admin/audit", headers=admin.headers).get_json()["items"]
    deleted = [e for e in audit if e["action"] == "account.delete"]
    assert len(deleted) == 1 and deleted[0]["actor_id"] == admin.id and deleted[0]["details"]["by"] == "admin"
    looked = [e for e in audit if e["action"] in ("prediction.read", "account.export")]
    assert looked and all(e["actor_id"] == admin.id for e in looked)
    assert_error(client.get(f"/api/v1/admin/users/{patient.id}", headers=admin.headers), 404)


def test_an_admin_cannot_delete_their_own_account_as_admin_nor_the_last_admin(client, admin):
    assert_error(client.delete(f"/api/v1/admin/users/{admin.id}", headers=admin.headers), 409, "own_account")
    assert_error(client.delete(ME, json={"password": admin.password}, headers=admin.headers), 409, "last_admin")


def test_a_patient_cannot_delete_or_export_others(client, patient, make_account):
    other = make_account()
    assert_error(client.delete(f"/api/v1/admin/users/{other.id}", headers=patient.headers), 403, "forbidden")
    assert_error(client.get(f"/api/v1/admin/users/{other.id}/export", headers=patient.headers), 403, "forbidden")


def test_deleting_an_account_empties_its_objects_in_s3(build_app, s3_bucket):
    app = build_app(**s3_bucket)
    client = app.test_client()
    email, password = "s3-person@example.org", "correct-horse-42"
    assert client.post("/api/v1/auth/register", json={"email": email, "password": password}).status_code == 201
    access = client.post("/api/v1/auth/login", json={"email": email, "password": password}).get_json()["access_token"]
    data = xray_dicom(sample_image("chest_xray"))
    body = {"modality": "chest_xray", "file": (io.BytesIO(data), "x.dcm")}
    made = client.post("/api/v1/predictions", data=body, headers=bearer(access), content_type="multipart/form-data")
    assert made.status_code == 201, made.get_json()
    bucket = boto3.client("s3", endpoint_url=s3_bucket["S3_ENDPOINT_URL"], region_name=s3_bucket["S3_REGION"])
    assert bucket.list_objects_v2(Bucket=s3_bucket["S3_BUCKET"])["KeyCount"] == 2  # the preview and the DICOM
    assert client.delete(ME, json={"password": password}, headers=bearer(access)).status_code == 204
    assert bucket.list_objects_v2(Bucket=s3_bucket["S3_BUCKET"])["KeyCount"] == 0


def test_the_openapi_document_describes_both(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "delete" in paths["/api/v1/me"] and "get" in paths["/api/v1/me/export"]
    assert "delete" in paths["/api/v1/admin/users/{user_id}"] and "get" in paths["/api/v1/admin/users/{user_id}/export"]


def test_the_export_holds_the_spots_and_deleting_the_account_removes_them(app, client, upload, patient):
    photo = sample_image("skin_lesion").read_bytes()
    ids = []
    for spot in ("Mole, left groin", "mole, LEFT groin", "Freckle"):
        response = upload(patient, "skin_lesion", data=photo, filename="a.jpg", spot=spot, body_site="genital")
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json())
    groin, freckle = ids[0]["spot"]["id"], ids[2]["spot"]["id"]
    renamed = client.patch(f"/api/v1/spots/{groin}", json={"name": "Mole, right groin"}, headers=patient.headers)
    assert renamed.status_code == 200

    with zipfile.ZipFile(io.BytesIO(client.get(EXPORT, headers=patient.headers).get_data())) as archive:
        spots = json.loads(archive.read("account.json"))["spots"]
    assert [(s["id"], s["name"], s["body_site"], s["modality"], s["prediction_ids"]) for s in spots] == [
        (groin, "Mole, right groin", "genital", "skin_lesion", [ids[0]["id"], ids[1]["id"]]),
        (freckle, "Freckle", "genital", "skin_lesion", [ids[2]["id"]]),
    ]
    assert all(s["created_at"] for s in spots)

    assert client.delete(ME, json={"password": patient.password}, headers=patient.headers).status_code == 204
    with app.app_context():
        assert db.session.execute(sa.text("SELECT count(*) FROM spots")).scalar() == 0
    assert traces_in_database(app, groin, freckle, "groin", "Freckle") == []
