"""/api/v1/jobs: an archive in, ordinary predictions out; owners only, admins audited, results as files."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile

import pytest
from sqlalchemy import func, select, update

from constants import PHOTO_KEY_PREFIX, Role
from db import db
from managers.job_scoring import JobScoring
from models import AuditEvent, Job, JobItem, Prediction
from services.storage import ObjectNotFound
from tests.resources.helpers import assert_error, bearer
from tests.support.jobs import fixture_images, submit, wait_for_job, zip_of
from tests.support.predictions import stored_files
from utils.result_files import RESULT_COLUMNS


@pytest.fixture
def images(installed_modalities):
    """Three real images of two kinds, and a copy of the first."""
    skin, breast = "skin_lesion", "breast"
    picked = [*fixture_images([skin])[:2], fixture_images([breast])[0]]
    return picked


def _archive(images) -> bytes:
    entries = [*images, ("copies/again.jpg", images[0][1]), ("notes/readme.txt", b"not an image at all")]
    return zip_of(entries)


def test_zip_of_images_becomes_predictions_in_the_history(client, patient, images):
    response = submit(client, patient.headers, _archive(images), note="clinic batch")
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert response.headers["Location"] == job["links"]["self"] == f"/api/v1/jobs/{job['id']}"
    job = wait_for_job(client, patient.headers, job["id"])
    assert job["status"] == "done"
    assert (job["total"], job["scored"], job["failed"]) == (5, 4, 1)
    assert job["scored"] + job["failed"] == job["total"]

    history = client.get(f"/api/v1/predictions?job_id={job['id']}", headers=patient.headers).get_json()
    assert history["total"] == 3  # the copy is scored once
    assert {p["job_id"] for p in history["items"]} == {job["id"]}
    assert {p["note"] for p in history["items"]} == {"clinic batch"}
    assert {p["modality"] for p in history["items"]} == {"skin_lesion", "breast"}
    assert client.get("/api/v1/predictions", headers=patient.headers).get_json()["total"] == 3

    items = client.get(job["links"]["items"], headers=patient.headers).get_json()["items"]
    assert [item["name"] for item in items] == [*(name for name, _ in images), "copies/again.jpg", "notes/readme.txt"]
    assert items[3]["prediction_id"] == items[0]["prediction_id"] and items[3]["sha256"] == items[0]["sha256"]
    assert items[4]["status"] == "failed" and items[4]["error"] == "unsupported_media_type"
    failed = client.get(f"{job['links']['items']}?status=failed", headers=patient.headers).get_json()
    assert [item["name"] for item in failed["items"]] == ["notes/readme.txt"]
    flagged = client.get(f"{job['links']['items']}?flagged=true", headers=patient.headers).get_json()
    assert flagged["total"] == sum(1 for item in items if item["flagged"]) == job["flagged"]
    # An ordinary prediction: its heatmap is drawn on first view.
    heatmap = client.get(f"/api/v1/predictions/{items[0]['prediction_id']}/heatmap", headers=patient.headers)
    assert heatmap.status_code == 200 and heatmap.mimetype == "image/png"


def test_results_have_one_line_per_entry_as_csv_and_jsonl(client, patient, images):
    job = submit(client, patient.headers, _archive(images)).get_json()
    csv_response = client.get(job["links"]["results_csv"], headers=patient.headers)
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(csv_response.get_data(as_text=True))))
    assert list(rows[0]) == [*RESULT_COLUMNS]
    expected = ("name", "sha256", "prediction_id", "modality", "label", "probabilities", "flagged", "error")
    assert RESULT_COLUMNS == expected
    assert len(rows) == 5
    assert rows[0]["label"] and json.loads(rows[0]["probabilities"]) and rows[0]["flagged"] in ("true", "false")
    assert rows[4]["error"] == "unsupported_media_type" and rows[4]["prediction_id"] == ""
    jsonl = client.get(job["links"]["results_jsonl"], headers=patient.headers).get_data(as_text=True)
    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert [line["name"] for line in lines] == [row["name"] for row in rows]
    assert isinstance(lines[0]["probabilities"], dict) and lines[4]["error"] == "unsupported_media_type"


def test_several_file_parts_make_one_job(client, patient, images):
    data = {"file": [(io.BytesIO(content), name.rsplit("/", 1)[-1]) for name, content in images]}
    response = client.post("/api/v1/jobs", headers=patient.headers, data=data, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(client, patient.headers, response.get_json()["id"])
    assert (job["status"], job["total"], job["scored"]) == ("done", 3, 3)


def test_a_named_modality_fails_the_images_of_another_kind(client, patient, images):
    job = submit(client, patient.headers, zip_of(images), modality="breast").get_json()
    job = wait_for_job(client, patient.headers, job["id"])
    items = client.get(job["links"]["items"], headers=patient.headers).get_json()["items"]
    assert [item["error"] for item in items] == ["modality_mismatch", "modality_mismatch", None]


def test_another_accounts_job_is_404_everywhere(client, make_account, images):
    owner, other = make_account(), make_account()
    job = submit(client, owner.headers, zip_of(images)).get_json()
    for path in ("", "/items", "/results.csv", "/results.jsonl"):
        assert_error(client.get(f"/api/v1/jobs/{job['id']}{path}", headers=other.headers), 404, "not_found")
    assert_error(client.delete(f"/api/v1/jobs/{job['id']}", headers=other.headers), 404, "not_found")
    assert client.get("/api/v1/jobs", headers=other.headers).get_json()["total"] == 0
    assert client.get("/api/v1/jobs", headers=owner.headers).get_json()["total"] == 1
    assert client.get(f"/api/v1/predictions?job_id={job['id']}", headers=other.headers).get_json()["total"] == 0


def test_admins_list_and_open_any_job_and_are_audited(app, client, make_account, images):
    owner, admin = make_account(), make_account(role=Role.ADMIN)
    job = submit(client, owner.headers, zip_of(images)).get_json()
    listed = client.get(f"/api/v1/admin/jobs?user_id={owner.id}", headers=admin.headers).get_json()
    assert [item["id"] for item in listed["items"]] == [job["id"]] and listed["items"][0]["owner_id"] == owner.id
    opened = client.get(f"/api/v1/admin/jobs/{job['id']}", headers=admin.headers).get_json()
    assert opened["total"] == 3
    assert_error(client.get("/api/v1/admin/jobs", headers=owner.headers), 403, "forbidden")
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == uuid.UUID(admin.id))))
    assert {"admin.jobs.list", "job.read"} <= actions


def test_a_read_token_polls_and_a_write_token_submits(client, patient, images):
    def token(scopes):
        body = {"name": "script", "scopes": scopes}
        return client.post("/api/v1/tokens", headers=patient.headers, json=body).get_json()["token"]

    read, write = bearer(token(["read"])), bearer(token(["read", "write"]))
    assert_error(submit(client, read, zip_of(images)), 403, "insufficient_scope")
    job = submit(client, write, zip_of(images)).get_json()
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=read).status_code == 200
    assert_error(client.delete(f"/api/v1/jobs/{job['id']}", headers=read), 403, "insufficient_scope")


def test_cancel_drops_unscored_items_and_their_chunks(app, client, patient, images, recording_queue):
    job = submit(client, patient.headers, zip_of(images)).get_json()
    assert job["status"] == "queued" and recording_queue.chunks
    cancelled = client.delete(f"/api/v1/jobs/{job['id']}", headers=patient.headers).get_json()
    assert (cancelled["status"], cancelled["total"], cancelled["scored"]) == ("cancelled", 0, 0)
    with app.app_context():
        for job_id, chunk_key in recording_queue.chunks:  # delivered late: nothing is scored
            JobScoring.score_chunk(job_id, chunk_key)
        assert db.session.scalar(select(func.count()).select_from(Prediction)) == 0
    # This job's chunks only: the photo folder is shared with tests that leave theirs to their workers.
    storage = app.extensions["storage"]
    assert recording_queue.chunks and not [key for _job, key in recording_queue.chunks if _stored(storage, key)]


def _stored(storage, key: str) -> bool:
    try:
        storage.get_object(key)
    except ObjectNotFound:
        return False
    return True


def test_cancel_keeps_scored_predictions_unless_purged(app, client, patient, images):
    kept = submit(client, patient.headers, zip_of(images)).get_json()
    purged = submit(client, patient.headers, zip_of(images[:2])).get_json()
    assert client.delete(f"/api/v1/jobs/{kept['id']}", headers=patient.headers).get_json()["status"] == "done"
    assert client.get(f"/api/v1/predictions?job_id={kept['id']}", headers=patient.headers).get_json()["total"] == 3
    with app.app_context():
        made = select(Prediction.image_key).where(Prediction.job_id == uuid.UUID(purged["id"]))
        purged_keys = set(db.session.scalars(made))
    assert len(purged_keys) == 2
    response = client.delete(f"/api/v1/jobs/{purged['id']}?purge=true", headers=patient.headers)
    assert response.status_code == 200
    assert client.get(f"/api/v1/predictions?job_id={purged['id']}", headers=patient.headers).get_json()["total"] == 0
    assert client.get("/api/v1/predictions", headers=patient.headers).get_json()["total"] == 3
    root = app.config["STORAGE_LOCAL_ROOT"]
    stored = {"/".join(p.relative_to(root).parts) for p in stored_files(root)}
    assert not purged_keys & stored  # the purged predictions' photos went with them


def test_a_chunk_delivered_again_writes_no_second_prediction(app, client, patient, images, recording_queue):
    storage = app.extensions["storage"]
    with app.app_context():
        photos_before = _photo_keys(storage)
    job = submit(client, patient.headers, zip_of([*images, ("copy.jpg", images[1][1])])).get_json()
    with app.app_context():
        chunks = {key: storage.get_object(key) for _job_id, key in recording_queue.chunks}
        for job_id, chunk_key in recording_queue.chunks:
            JobScoring.score_chunk(job_id, chunk_key)
        # As if a second delivery had read the chunk and its items before the first one's commits.
        for key, stored in chunks.items():
            storage.put_object(key, stored.data, stored.content_type)
        db.session.execute(update(JobItem).values(status="pending", prediction_id=None))
        db.session.execute(update(Job).values(status="running"))
        db.session.commit()
        for job_id, chunk_key in recording_queue.chunks:
            JobScoring.score_chunk(job_id, chunk_key)
        assert db.session.scalar(select(func.count()).select_from(Prediction)) == 3
        # The second delivery's photos went with the writes the unique index refused: one photo per prediction.
        kept = set(db.session.scalars(select(Prediction.image_key)))
        assert _photo_keys(storage) - photos_before == kept
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=patient.headers).get_json()
    assert (done["status"], done["scored"], done["failed"]) == ("done", 4, 0)


def _photo_keys(storage) -> set[str]:
    return {listed.key for listed in storage.list_objects() if listed.key.startswith(f"{PHOTO_KEY_PREFIX}/")}


@pytest.mark.parametrize(
    ("entries", "status", "code", "reason"),
    [
        ([("../../etc/passwd.jpg", b"x")], 422, "invalid_archive", "unsafe_entry_name"),
        ([("/abs/photo.jpg", b"x")], 422, "invalid_archive", "unsafe_entry_name"),
        ([("inner.zip", zip_of([("a.jpg", b"x")]))], 422, "invalid_archive", "nested_archive"),
        ([("bomb.bmp", bytes(60 * 1024 * 1024))], 422, "invalid_archive", "compression_ratio"),
        ([(f"{n}.jpg", b"") for n in range(20_001)], 413, "archive_too_large", "too_many_entries"),
    ],
    ids=["traversal", "absolute", "nested_zip", "bomb", "20001_entries"],
)
def test_a_bad_archive_is_refused_and_nothing_is_stored(app, client, patient, images, entries, status, code, reason):
    archive = zip_of([images[0], *entries])
    before = stored_files(app.config["STORAGE_LOCAL_ROOT"])
    error = assert_error(submit(client, patient.headers, archive), status, code)
    assert error["details"]["reason"] == reason
    assert stored_files(app.config["STORAGE_LOCAL_ROOT"]) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Job)) == 0


def test_a_file_that_is_no_archive_nor_image_is_a_failed_item(client, patient):
    job = submit(client, patient.headers, b"PK\x03\x04 but not really a zip", name="broken.zip")
    assert_error(job, 422, "invalid_archive")
    single = submit(client, patient.headers, b"%PDF-1.4 a document", name="letter.pdf").get_json()
    items = client.get(single["links"]["items"], headers=patient.headers).get_json()["items"]
    assert [(item["name"], item["error"]) for item in items] == [("letter.pdf", "unsupported_media_type")]


def test_entries_are_named_by_the_archive_never_written_by_name(app, client, patient, images):
    name, data = images[0]
    archive = zip_of([(f"./scans\\day1/{name.rsplit('/', 1)[-1]}", data)])
    job = submit(client, patient.headers, archive).get_json()
    items = client.get(job["links"]["items"], headers=patient.headers).get_json()["items"]
    assert items[0]["name"] == f"scans/day1/{name.rsplit('/', 1)[-1]}"
    assert not [p for p in stored_files(app.config["STORAGE_LOCAL_ROOT"]) if "scans" in p.parts]
    with zipfile.ZipFile(io.BytesIO(archive)) as check:
        assert check.namelist()[0].startswith("./")


def test_entries_are_held_to_the_single_upload_rules_capture_and_storage_quota(app, client, patient, monkeypatch):
    """A batch entry passes the same capture check as an upload, and counts against the account's storage quota."""
    from PIL import Image

    from tests.support.images import sample_image

    with Image.open(sample_image("skin_lesion")) as image:
        dark = io.BytesIO()
        image.convert("RGB").point(lambda v: v * 0.3).save(dark, "JPEG", quality=95)
    good = sample_image("skin_lesion").read_bytes()
    job = wait_for_job(
        client,
        patient.headers,
        submit(client, patient.headers, zip_of([("dark.jpg", dark.getvalue())])).get_json()["id"],
    )
    items = client.get(job["links"]["items"], headers=patient.headers).get_json()["items"]
    assert [(item["status"], item["error"]) for item in items] == [("failed", "image_quality")]

    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", 1)
    job = wait_for_job(
        client, patient.headers, submit(client, patient.headers, zip_of([("a.jpg", good)])).get_json()["id"]
    )
    items = client.get(job["links"]["items"], headers=patient.headers).get_json()["items"]
    assert [(item["status"], item["error"]) for item in items] == [("failed", "storage_quota_exceeded")]


def test_more_concurrent_jobs_than_the_quota_is_429_too_many_jobs(
    app, client, patient, images, recording_queue, monkeypatch
):
    monkeypatch.setitem(app.config, "JOB_MAX_ACTIVE_PER_ACCOUNT", 2)
    first = submit(client, patient.headers, zip_of(images)).get_json()
    assert submit(client, patient.headers, zip_of(images)).status_code == 202
    error = assert_error(submit(client, patient.headers, zip_of(images)), 429, "too_many_jobs")
    assert error["details"] == {"limit": 2, "active": 2}
    # A job that ends frees its place.
    assert client.delete(first["links"]["self"], headers=patient.headers).status_code == 200
    assert submit(client, patient.headers, zip_of(images)).status_code == 202
