"""Helpers for batch-job tests: archives built in memory, a queue that only records (and the recording_queue
fixture, a pytest plugin of tests/conftest.py), submitting and waiting."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Iterable

import pytest
from PIL import Image

from services.job_queue import JobQueue
from tests.support.images import sample_images


def zip_of(entries: Iterable[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def fixture_images(modalities: Iterable[str]) -> list[tuple[str, bytes]]:
    """(name, bytes) of every committed fixture image of these modalities."""
    return [(f"{m}/{path.name}", path.read_bytes()) for m in modalities for path in sample_images(m)]


def variants(images: list[tuple[str, bytes]], count: int) -> list[tuple[str, bytes]]:
    """count distinct JPEGs made from the images (re-encoded at different qualities)."""
    made: list[tuple[str, bytes]] = []
    quality = 95
    while len(made) < count:
        for name, data in images:
            if len(made) == count:
                break
            buffer = io.BytesIO()
            with Image.open(io.BytesIO(data)) as image:
                image.convert("RGB").save(buffer, format="JPEG", quality=quality)
            made.append((f"q{quality}/{name}.jpg", buffer.getvalue()))
        quality -= 3
    return made


def submit(client, headers: dict, archive: bytes, name: str = "batch.zip", **form: str):
    return client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"file": (io.BytesIO(archive), name), **form},
        content_type="multipart/form-data",
    )


def wait_for_job(client, headers: dict, job_id: str, timeout: float = 60) -> dict:
    """Poll a job until it is no longer queued or running; its last state."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


class RecordingQueue(JobQueue):
    """Keeps what would be queued, for a test to run (or not) itself."""

    def __init__(self) -> None:
        self.chunks: list[tuple[uuid.UUID, str]] = []

    def enqueue(self, job_id: uuid.UUID, chunk_key: str) -> None:
        self.chunks.append((job_id, chunk_key))


@pytest.fixture
def recording_queue(app):
    """The app's job queue replaced by a RecordingQueue for the test: chunks are kept for the test to score."""
    saved = app.extensions["job_queue"]
    app.extensions["job_queue"] = queue = RecordingQueue()
    yield queue
    app.extensions["job_queue"] = saved
