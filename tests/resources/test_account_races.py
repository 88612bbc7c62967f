"""Accounts changed while other requests of theirs are in flight, on SQLite and PostgreSQL, photos in moto's S3.

Deleting an account while it uploads leaves no photo behind and answers no upload with a 500; two
admins demoting or disabling each other at once leave an admin. Each request runs in its own thread
with its own app context, as on a threaded server; where the order matters, a storage wrapper holds
one request at a chosen call until the other is done (a deterministic interleaving, not a sleep).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator

import boto3
import pytest
import sqlalchemy as sa

from auth import limiter
from constants import Role
from db import db
from managers.account_data import AccountDataManager
from managers.admin import AdminManager
from managers.users import UserManager
from models import Prediction, User
from tests.conftest import DEFAULT_PASSWORD, SELECTED_BACKENDS, dispose, make_app, make_database, migrate_to_head
from tests.resources.helpers import bearer
from tests.support.images import sample_image

WAIT = 30  # seconds; only reached if the code under test hangs


@pytest.fixture(params=SELECTED_BACKENDS)
def race_app(request, tmp_path, s3_bucket, record_backend) -> Iterator:
    """A migrated app of its own on each database backend, photos in a fresh moto bucket."""
    url, drop = make_database(request.param, tmp_path)
    app = make_app(url, tmp_path, UPLOAD_RATE_LIMIT="10000 per minute", **s3_bucket)
    migrate_to_head(app)
    record_backend(request.param)
    yield app
    limiter.reset()
    dispose(app)
    drop()


class HoldingStorage:
    """The app's storage, holding one call in one named thread until the test lets it go on."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self._holds: dict[str, tuple[str, str, threading.Event, threading.Event]] = {}

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def hold(self, method: str, thread_name: str, key_prefix: str = "") -> tuple[threading.Event, threading.Event]:
        """(reached, resume): reached is set when thread_name makes the call (after it, for put_object)."""
        reached, resume = threading.Event(), threading.Event()
        self._holds[method] = (thread_name, key_prefix, reached, resume)
        return reached, resume

    def _maybe_hold(self, method: str, key: str) -> None:
        hold = self._holds.get(method)
        if hold is None:
            return
        thread_name, key_prefix, reached, resume = hold
        if threading.current_thread().name == thread_name and key.startswith(key_prefix) and not reached.is_set():
            reached.set()
            assert resume.wait(WAIT), "the test never let the held call go on"

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        self._inner.put_object(key, data, content_type)
        self._maybe_hold("put_object", key)

    def delete_object(self, key: str) -> None:
        self._maybe_hold("delete_object", key)
        self._inner.delete_object(key)


def _hold_storage(app) -> HoldingStorage:
    storage = HoldingStorage(app.extensions["storage"])
    app.extensions["storage"] = storage
    return storage


def _register(app, email: str) -> str:
    client = app.test_client()
    assert client.post("/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD}).status_code == 201
    return _login(app, email)


def _login(app, email: str) -> str:
    response = app.test_client().post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def _upload(app, token: str) -> tuple[int, dict]:
    data = {"modality": "skin_lesion", "file": (io.BytesIO(sample_image("skin_lesion").read_bytes()), "lesion.jpg")}
    response = app.test_client().post(
        "/api/v1/predictions", data=data, headers=bearer(token), content_type="multipart/form-data"
    )
    return response.status_code, response.get_json(silent=True) or {}


def _delete_account(app, token: str) -> int:
    return (
        app.test_client().delete("/api/v1/me", json={"password": DEFAULT_PASSWORD}, headers=bearer(token)).status_code
    )


def _in_thread(name: str, work: Callable[[], object]) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(work()), name=name, daemon=True)
    thread.start()
    return thread, result


def _objects_in_bucket(app) -> list[str]:
    client = boto3.client("s3", endpoint_url=app.config["S3_ENDPOINT_URL"], region_name=app.config["S3_REGION"])
    listed = client.list_objects_v2(Bucket=app.config["S3_BUCKET"]).get("Contents", [])
    return [item["Key"] for item in listed]


def _rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# -- deleting an account while it uploads ---------------------------------------------------------


def test_an_upload_in_flight_when_its_account_is_deleted_is_refused_and_leaves_no_photo(race_app):
    token = _register(race_app, "racer@example.org")
    storage = _hold_storage(race_app)
    photo_stored, go_on = storage.hold("put_object", "upload", key_prefix="photos/")
    upload, answer = _in_thread("upload", lambda: _upload(race_app, token))
    assert photo_stored.wait(WAIT)  # the upload is past its checks, its photo in the bucket

    assert _delete_account(race_app, token) == 204
    go_on.set()
    upload.join(WAIT)

    status, body = answer[0]
    assert (status, body["error"]["code"]) == (401, "account_disabled")
    assert _objects_in_bucket(race_app) == []
    assert _rows(race_app, Prediction) == 0 and _rows(race_app, User) == 0


def test_an_upload_recorded_while_the_deletion_runs_leaves_no_photo(race_app):
    token = _register(race_app, "racer@example.org")
    assert _upload(race_app, token)[0] == 201  # something for the deletion to remove
    storage = _hold_storage(race_app)
    deleting, go_on = storage.hold("delete_object", "delete")
    deletion, deleted = _in_thread("delete", lambda: _delete_account(race_app, token))
    assert deleting.wait(WAIT)

    status, body = _upload(race_app, token)  # answered while the deletion is removing objects
    go_on.set()
    deletion.join(WAIT)

    assert deleted == [204]
    assert status in (201, 401) and (status == 201 or body["error"]["code"] == "account_disabled")
    assert _objects_in_bucket(race_app) == []
    assert _rows(race_app, Prediction) == 0 and _rows(race_app, User) == 0


def test_deleting_an_account_in_the_middle_of_its_uploads_leaves_nothing_and_no_500(race_app):
    token = _register(race_app, "busy@example.org")
    answers: list[tuple[int, dict]] = []
    first_upload_done = threading.Event()

    def keep_uploading() -> None:
        while True:
            answer = _upload(race_app, token)
            answers.append(answer)
            first_upload_done.set()
            if answer[0] != 201:
                return

    uploaders = [threading.Thread(target=keep_uploading, daemon=True) for _ in range(4)]
    for uploader in uploaders:
        uploader.start()
    assert first_upload_done.wait(WAIT)
    assert _delete_account(race_app, token) == 204
    for uploader in uploaders:
        uploader.join(WAIT)

    assert {status for status, _ in answers} <= {201, 401}, [a for a in answers if a[0] not in (201, 401)]
    assert {body["error"]["code"] for status, body in answers if status == 401} == {"account_disabled"}
    assert _objects_in_bucket(race_app) == []
    assert _rows(race_app, Prediction) == 0 and _rows(race_app, User) == 0


# -- two admins at once --------------------------------------------------------------------------


def _make_admin(app, email: str) -> str:
    with app.app_context():
        UserManager.create(email, DEFAULT_PASSWORD, role=Role.ADMIN)
    return _login(app, email)


def _user_id(app, email: str) -> str:
    with app.app_context():
        return str(UserManager.get_by_email(email).id)


def _active_admins(app) -> int:
    with app.app_context():
        query = sa.select(sa.func.count()).select_from(User).where(User.role == "admin", User.is_active.is_(True))
        return db.session.scalar(query)


@pytest.mark.parametrize(
    "change",
    [{"role": "patient"}, {"is_active": False}, None],
    ids=["demote", "disable", "delete"],
)
def test_two_admins_acting_on_each_other_at_once_leave_an_admin(race_app, change, monkeypatch):
    tokens = {name: _make_admin(race_app, f"{name}@example.org") for name in ("ada", "bob")}
    ids = {name: _user_id(race_app, f"{name}@example.org") for name in tokens}
    # Both requests are let in as admins (authenticated, role checked) before either changes anything.
    both_in = threading.Barrier(2, timeout=WAIT)
    manager, use_case = (AdminManager, "update_user") if change else (AccountDataManager, "delete_by_admin")
    original = getattr(manager, use_case)

    def entered_together(*args, **kwargs):
        both_in.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(manager, use_case, staticmethod(entered_together))

    def act(actor: str, target: str) -> tuple[int, dict]:
        client = race_app.test_client()
        url, headers = f"/api/v1/admin/users/{ids[target]}", bearer(tokens[actor])
        response = client.patch(url, json=change, headers=headers) if change else client.delete(url, headers=headers)
        return response.status_code, response.get_json(silent=True) or {}

    threads = [_in_thread(f"{a}-acts", lambda a=a, t=t: act(a, t)) for a, t in (("ada", "bob"), ("bob", "ada"))]
    for thread, _ in threads:
        thread.join(WAIT)
    answers = sorted(result[0][0] for _, result in threads)

    assert answers == [200 if change else 204, 409]
    refused = next(body for _, result in threads for status, body in result if status == 409)
    assert refused["error"]["code"] == "last_admin"
    assert _active_admins(race_app) == 1


# -- uploads racing for the last of a storage quota ----------------------------------------------


def test_uploads_at_once_cannot_overrun_the_storage_quota(race_app):
    token = _register(race_app, "hasty@example.org")
    photo_size = len(sample_image("skin_lesion").read_bytes())
    race_app.config["STORAGE_QUOTA_BYTES"] = int(photo_size * 2.5)
    # Every upload passes the early check (nothing is kept yet) before any of them is recorded.
    all_checked = threading.Barrier(6, timeout=WAIT)
    storage = race_app.extensions["storage"]

    class StoringTogether(HoldingStorage):
        def put_object(self, key: str, data: bytes, content_type: str) -> None:
            all_checked.wait()
            storage.put_object(key, data, content_type)

    race_app.extensions["storage"] = StoringTogether(storage)
    uploads = [_in_thread(f"upload-{n}", lambda: _upload(race_app, token)) for n in range(6)]
    for thread, _ in uploads:
        thread.join(WAIT)

    statuses = sorted(result[0][0] for _, result in uploads)
    assert statuses == [201, 201, 413, 413, 413, 413]
    assert len(_objects_in_bucket(race_app)) == 2
