"""Pytest plugin: uploads of real images through the API, and faults at our seams.

Loaded from tests/conftest.py. Fault injection goes through seams the app owns: a Storage whose
put_object fails (swapped into app.extensions["storage"]), and a SQLAlchemy before_commit event
that fails the commit of a Prediction, the way a database that drops the connection does.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cnn_model.modalities import MODALITIES
from cnn_model.runtime import ARTIFACTS_DIR, CARD_FILE
from config import PROJECT_ROOT
from models import Prediction
from services.storage import LocalFolderStorage, create_storage
from tests.support.images import sample_image
from utils.errors import StorageUnavailable

TEMP_FILES_DIR = PROJECT_ROOT / "temp_files"


def spilling_png(modality: str) -> bytes:
    """A real image of the modality as an uncompressed PNG too big for the in-memory spool: uploading it
    puts a spill file in temp_files/."""
    from PIL import Image

    from resources.api import SPOOL_IN_MEMORY_BYTES
    from tests.support.images import sample_image

    buffer = io.BytesIO()
    with Image.open(sample_image(modality)) as image:
        image.convert("RGB").resize((800, 800)).save(buffer, format="PNG", compress_level=0)
    assert buffer.tell() > SPOOL_IN_MEMORY_BYTES
    return buffer.getvalue()


def stored_files(root: Path) -> list[Path]:
    """Every file a LocalFolderStorage holds under root (objects and their content-type twins)."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.name.startswith(".ready-"))


def temp_files_listed() -> list[str]:
    """What temp_files/ shows: nothing, even while an upload spills there, as spill files are anonymous."""
    return sorted(p.name for p in TEMP_FILES_DIR.iterdir() if p.name != ".gitkeep")


def open_temp_files() -> list[str]:
    """Files in temp_files/ this process holds open (anonymous ones read "... (deleted)"): a leaked spool shows here."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since listdir (the listing's own descriptor among them)
            continue
        if target.startswith(str(TEMP_FILES_DIR) + os.sep):
            held.append(target)
    return held


@pytest.fixture(scope="session")
def installed_modalities() -> tuple[str, ...]:
    """Modalities whose model artifact is shipped in cnn_model/artifacts."""
    installed = tuple(m for m in MODALITIES if (ARTIFACTS_DIR / m / CARD_FILE).is_file())
    assert installed, "no model artifacts in cnn_model/artifacts: export at least one model first"
    return installed


@pytest.fixture(scope="session")
def modality(installed_modalities) -> str:
    """One modality with a model, for tests that need any one."""
    return "breast" if "breast" in installed_modalities else installed_modalities[0]


@pytest.fixture
def upload(client) -> Callable[..., object]:
    """POST an image to /api/v1/predictions as account; returns the response."""

    def post(
        account,
        modality: str,
        path: Path | None = None,
        *,
        field: str = "file",
        url: str = "/api/v1/predictions",
        data: bytes | None = None,
        filename: str | None = None,
        **form: str,
    ):
        if data is None:
            path = path or sample_image(modality)
            data, filename = path.read_bytes(), filename or path.name
        body = {
            **({"modality": modality} if modality is not None else {}),
            **form,
            field: (io.BytesIO(data), filename or "upload"),
        }
        return client.post(url, data=body, headers=account.headers, content_type="multipart/form-data")

    return post


@pytest.fixture
def predict(upload) -> Callable[..., dict]:
    """Make a prediction that must succeed; returns its JSON."""

    def make(account, modality: str, path: Path | None = None, **form: str) -> dict:
        response = upload(account, modality, path, **form)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


# -- faults at our seams ----------------------------------------------------------------------


class FailingPutStorage(LocalFolderStorage):
    """A local folder whose put_object fails from the Nth call on, like a bucket that goes away mid-request."""

    def __init__(self, root, fail_from_call: int) -> None:
        super().__init__(root)
        self.fail_from_call = fail_from_call
        self.put_calls = 0

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        self.put_calls += 1
        if self.put_calls >= self.fail_from_call:
            raise StorageUnavailable(details={"backend": "test", "reason": "injected put failure"})
        super().put_object(key, data, content_type)


@pytest.fixture
def swap_storage(app) -> Iterator[Callable]:
    """Replace the app's storage backend for one test; the original comes back afterwards."""
    original = app.extensions["storage"]

    def swap(storage):
        app.extensions["storage"] = storage
        return storage

    yield swap
    app.extensions["storage"] = original


@pytest.fixture
def storage_root(swap_storage, tmp_path) -> Path:
    """The app's photos in a folder of this test's own, so that what is stored can be counted."""
    return swap_storage(LocalFolderStorage(tmp_path / "photos")).root


@pytest.fixture
def s3_storage(swap_storage, s3_bucket):
    """The app's photos in a fresh bucket on the moto S3 server, over HTTP."""
    return swap_storage(create_storage(s3_bucket))


@pytest.fixture
def failing_prediction_commit() -> Iterator[list]:
    """Make every commit that would write a Prediction fail as a lost database connection does."""
    failures: list = []
    flushed = "medsight_test_prediction_flushed"  # a Prediction went out in a flush before the commit

    def remember(session: Session, _context) -> None:
        if any(isinstance(obj, Prediction) for obj in session.new):
            session.info[flushed] = True

    def forget(session: Session) -> None:
        session.info.pop(flushed, None)

    def fail(session: Session) -> None:
        if session.info.pop(flushed, False) or any(isinstance(obj, Prediction) for obj in session.new):
            failures.append(True)
            raise OperationalError("COMMIT", {}, ConnectionError("injected: server closed the connection"))

    hooks = (("after_flush", remember), ("after_rollback", forget), ("before_commit", fail))
    for name, hook in hooks:
        event.listen(Session, name, hook)
    yield failures
    for name, hook in hooks:
        event.remove(Session, name, hook)
