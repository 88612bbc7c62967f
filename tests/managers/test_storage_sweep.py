"""`flask --app app storage sweep`: after a crash mid-upload, nothing is left behind for long, on both backends."""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import timedelta

import boto3
import pytest

from db import db
from managers.predictions import PredictionManager
from models import Prediction, User, utcnow
from tests.support.images import sample_image

OLD = time.time() - 3 * 3600  # written three hours ago


@pytest.fixture(params=["local", "s3"])
def swept_app(request, build_app):
    if request.param == "local":
        return build_app()
    return build_app(**request.getfixturevalue("s3_bucket"))


def _upload(client, email="sweep@example.org"):
    client.post("/api/v1/auth/register", json={"email": email, "password": "sweep-pass-42"})
    login = client.post("/api/v1/auth/login", json={"email": email, "password": "sweep-pass-42"}).get_json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    data = {"modality": "skin_lesion", "file": (io.BytesIO(sample_image("skin_lesion").read_bytes()), "a.jpg")}
    response = client.post("/api/v1/predictions", data=data, headers=headers, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    client.get(response.get_json()["heatmap_url"], headers=headers)  # the heatmap is drawn on first view
    _draw_thumbnail(client.application, response.get_json()["id"])
    return response.get_json()


def _draw_thumbnail(app, prediction_id: str) -> None:
    """The history's thumbnail, drawn on its first view (as the history page asks for it)."""
    with app.app_context():
        prediction = db.session.get(Prediction, uuid.UUID(prediction_id))
        PredictionManager.open_thumbnail(db.session.get(User, prediction.owner_id), prediction.id)
        db.session.remove()


def _age(app, key: str) -> None:
    """Make a stored object look three hours old (local: its mtime; S3: moto stamps "now", so tests move the
    sweep's clock instead)."""
    if app.config.get("S3_BUCKET"):
        return
    os.utime(os.path.join(app.config["STORAGE_LOCAL_ROOT"], key), (OLD, OLD))


def _keys(app) -> set[str]:
    with app.app_context():
        return {listed.key for listed in app.extensions["storage"].list_objects()}


def _sweep(app, *args: str):
    return app.test_cli_runner().invoke(args=["storage", "sweep", *args])


def _orphan(app) -> str:
    """A photo stored by an upload whose worker died before its record was written."""
    with app.app_context():
        storage = app.extensions["storage"]
        key = storage.new_key("photos")
        storage.put_object(key, b"\xff\xd8\xff medical photo", "image/jpeg")
    _age(app, key)
    return key


def test_a_thumbnail_is_kept_with_its_photo_and_removed_without_it(swept_app, monkeypatch):
    kept = _upload(swept_app.test_client())
    with swept_app.app_context():
        storage = swept_app.extensions["storage"]
        kept_thumbnail = "thumbnails/" + db.session.get(Prediction, uuid.UUID(kept["id"])).image_key.split("/", 1)[1]
        orphan = storage.new_key("thumbnails")
        storage.put_object(orphan, b"\xff\xd8\xff thumbnail", "image/jpeg")
    if swept_app.config.get("S3_BUCKET"):
        monkeypatch.setattr("managers.storage_sweep.utcnow", lambda: utcnow() + timedelta(hours=3))
    else:
        for key in _keys(swept_app):
            _age(swept_app, key)

    result = _sweep(swept_app, "--older-than", "60")

    assert result.exit_code == 0, result.output
    after = _keys(swept_app)
    assert kept_thumbnail in after and orphan not in after


def test_an_orphaned_photo_is_removed_and_recorded_ones_are_kept(swept_app, monkeypatch):
    client = swept_app.test_client()
    kept = _upload(client)
    orphan = _orphan(swept_app)
    if swept_app.config.get("S3_BUCKET"):
        monkeypatch.setattr("managers.storage_sweep.utcnow", lambda: utcnow() + timedelta(hours=3))
    else:
        for key in _keys(swept_app):
            _age(swept_app, key)
    before = _keys(swept_app)
    result = _sweep(swept_app, "--older-than", "60")
    assert result.exit_code == 0, result.output
    assert f"removed {orphan}" in result.output
    after = _keys(swept_app)
    assert after == before - {orphan}
    with swept_app.app_context():
        row = db.session.get(Prediction, uuid.UUID(kept["id"]))
        assert row.image_key in after and row.heatmap_key in after


def test_a_dry_run_lists_and_removes_nothing(swept_app, monkeypatch):
    orphan = _orphan(swept_app)
    if swept_app.config.get("S3_BUCKET"):
        monkeypatch.setattr("managers.storage_sweep.utcnow", lambda: utcnow() + timedelta(hours=3))
    result = _sweep(swept_app, "--older-than", "60", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"would remove {orphan}" in result.output
    assert orphan in _keys(swept_app)


def test_a_recent_orphan_is_left_for_its_upload_to_finish(swept_app):
    with swept_app.app_context():
        storage = swept_app.extensions["storage"]
        key = storage.new_key("photos")
        storage.put_object(key, b"in flight", "image/jpeg")
    result = swept_app.test_cli_runner().invoke(args=["storage", "sweep", "--older-than", "60"])
    assert result.exit_code == 0, result.output
    assert key in _keys(swept_app) and "1 younger than 60 minutes" in result.output


def test_only_our_prefixes_are_touched(swept_app, monkeypatch):
    with swept_app.app_context():
        swept_app.extensions["storage"].put_object("backups/keep-me", b"not ours", "application/octet-stream")
    _age(swept_app, "backups/keep-me")
    monkeypatch.setattr("managers.storage_sweep.utcnow", lambda: utcnow() + timedelta(hours=3))
    assert _sweep(swept_app, "--older-than", "60").exit_code == 0
    assert "backups/keep-me" in _keys(swept_app)


def test_a_partial_local_write_is_removed(build_app):
    app = build_app()
    root = app.config["STORAGE_LOCAL_ROOT"]
    os.makedirs(os.path.join(root, "photos", "2026"), exist_ok=True)
    partial = os.path.join(root, "photos", "2026", ".tmp-abc123")
    with open(partial, "wb") as handle:
        handle.write(b"half a photo")
    os.utime(partial, (OLD, OLD))
    result = app.test_cli_runner().invoke(args=["storage", "sweep"])
    assert result.exit_code == 0, result.output
    assert "unfinished write" in result.output and not os.path.exists(partial)


def test_an_unfinished_s3_multipart_upload_is_aborted(build_app, s3_bucket, monkeypatch):
    app = build_app(**s3_bucket)
    client = boto3.client("s3", endpoint_url=s3_bucket["S3_ENDPOINT_URL"], region_name=s3_bucket["S3_REGION"])
    client.create_multipart_upload(Bucket=s3_bucket["S3_BUCKET"], Key="photos/2026/12/01/half")
    monkeypatch.setattr("managers.storage_sweep.utcnow", lambda: utcnow() + timedelta(hours=3))
    result = app.test_cli_runner().invoke(args=["storage", "sweep"])
    assert result.exit_code == 0, result.output
    assert "unfinished write" in result.output
    assert not client.list_multipart_uploads(Bucket=s3_bucket["S3_BUCKET"]).get("Uploads")


def test_a_foreign_s3_multipart_upload_survives_the_sweep(build_app, s3_bucket, monkeypatch):
    # Someone else's upload in the same bucket (a backup tool, another service) is not ours to abort.
    app = build_app(**s3_bucket)
    client = boto3.client("s3", endpoint_url=s3_bucket["S3_ENDPOINT_URL"], region_name=s3_bucket["S3_REGION"])
    bucket = s3_bucket["S3_BUCKET"]
    foreign = client.create_multipart_upload(Bucket=bucket, Key="backups/2026/12/01/dump.tar")["UploadId"]
    ours = client.create_multipart_upload(Bucket=bucket, Key="photos/2026/12/01/half")["UploadId"]
    monkeypatch.setattr("managers.storage_sweep.utcnow", lambda: utcnow() + timedelta(hours=3))
    result = app.test_cli_runner().invoke(args=["storage", "sweep"])
    assert result.exit_code == 0, result.output
    left = {upload["UploadId"] for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    assert left == {foreign}, (ours, result.output)
    assert "backups/" not in result.output


def test_a_foreign_local_temporary_file_survives_the_sweep(build_app):
    app = build_app()
    root = app.config["STORAGE_LOCAL_ROOT"]
    os.makedirs(os.path.join(root, "backups"), exist_ok=True)
    foreign = os.path.join(root, "backups", ".tmp-not-ours")
    with open(foreign, "wb") as handle:
        handle.write(b"someone else's write in progress")
    os.utime(foreign, (OLD, OLD))
    result = app.test_cli_runner().invoke(args=["storage", "sweep"])
    assert result.exit_code == 0, result.output
    assert os.path.exists(foreign)


def test_a_chunk_of_a_job_still_to_score_is_kept_and_one_of_a_job_over_is_removed(swept_app, monkeypatch):
    from models import Job, JobItem, User

    with swept_app.app_context():
        storage = swept_app.extensions["storage"]
        owner = User(email="chunks@example.org", password_hash="x")
        db.session.add(owner)
        db.session.flush()
        chunks = {}
        for status in ("running", "cancelled"):
            key = storage.new_key("jobs")
            storage.put_object(key, b"PK\x05\x06" + b"\x00" * 18, "application/zip")
            job = Job(owner_id=owner.id, status=status)
            db.session.add(job)
            db.session.flush()
            db.session.add(JobItem(job_id=job.id, position=0, name="a.jpg", chunk_key=key))
            chunks[status] = key
        db.session.commit()
    for key in chunks.values():
        _age(swept_app, key)
    if swept_app.config.get("S3_BUCKET"):
        monkeypatch.setattr("managers.storage_sweep.utcnow", lambda: utcnow() + timedelta(hours=3))
    result = _sweep(swept_app, "--older-than", "60")
    assert result.exit_code == 0, result.output
    assert _keys(swept_app) & set(chunks.values()) == {chunks["running"]}
