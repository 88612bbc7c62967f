"""Scoring one chunk of a batch job into predictions, exactly once per distinct entry.

A worker (Celery or the embedded pool) calls JobScoring.score_chunk(job_id, chunk_key). Each distinct
entry is scored and written in its own unit of work: the photo stored, the Prediction (with its job
id and the entry's sha256) and its audit event added, and every pending item of the job holding those
bytes marked scored. Two things keep a chunk that is delivered twice (a worker lost mid-chunk, the
broker handing the chunk to another) from writing anything twice: items already settled are not
scored again, and the unique (job_id, job_entry_sha256) index refuses a second prediction for an
entry. Items a cancellation dropped meanwhile make the unit of work undo its prediction.

The heatmap is not drawn here: as for a single upload, the activation map is kept with the row and
the PNG made on first view.
"""

from __future__ import annotations

import io
import logging
import uuid
import zipfile

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from constants import HEATMAP_KEY_PREFIX, ORIGINAL_KEY_PREFIX, PHOTO_KEY_PREFIX, AuditAction, JobItemStatus, JobStatus
from db import db
from managers.audit import AuditManager
from managers.jobs import ACTIVE_STATUSES, JobManager
from managers.models import ModalityChoice, ModelManager
from managers.transactions import UnitOfWork, unit_of_work
from models import Job, JobItem, Prediction, User
from services.storage import Storage
from utils.errors import AppError, ServiceUnavailable
from utils.images import ValidatedImage, validate_image_upload

log = logging.getLogger(__name__)


class _ItemsGone(Exception):
    """The items this prediction was for were settled or dropped meanwhile: undo it."""


def _storage() -> Storage:
    return current_app.extensions["storage"]


def _store(uow: UnitOfWork, storage: Storage, prefix: str, data: bytes, content_type: str) -> str:
    key = storage.new_key(prefix)
    uow.on_rollback(storage.delete_object, key)
    storage.put_object(key, data, content_type)
    return key


def _settle(job_id: uuid.UUID, sha256: str, **values) -> int:
    """Mark the job's pending items with these bytes; how many there were (0: someone else settled them)."""
    return db.session.execute(
        update(JobItem)
        .where(JobItem.job_id == job_id, JobItem.sha256 == sha256, JobItem.status == JobItemStatus.PENDING.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount


def _is_active(job_id: uuid.UUID) -> bool:
    return db.session.scalar(select(Job.status).where(Job.id == job_id)) in ACTIVE_STATUSES


class JobScoring:
    @staticmethod
    def score_chunk(job_id: uuid.UUID, chunk_key: str) -> None:
        """Score the pending items of one stored chunk, then drop the chunk and finish the job if it was the last."""
        job = db.session.get(Job, job_id)
        if job is None or job.status not in ACTIVE_STATUSES:
            return
        with unit_of_work():
            db.session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.RUNNING.value)
            )
        owner = db.session.get(User, job.owner_id)
        storage = _storage()
        groups = JobScoring._pending_by_entry(job_id, chunk_key)
        if groups:
            with zipfile.ZipFile(io.BytesIO(storage.get_object(chunk_key).data)) as chunk:
                for sha256, position in groups.items():
                    if not _is_active(job_id):
                        return
                    JobScoring._score_entry(job, owner, sha256, chunk.read(str(position)))
        storage.delete_object(chunk_key)
        JobManager.finish_if_complete(job_id)

    @staticmethod
    def _pending_by_entry(job_id: uuid.UUID, chunk_key: str) -> dict[str, int]:
        """sha256 -> the position its bytes are stored under (its first copy), for the chunk's pending items."""
        rows = db.session.execute(
            select(JobItem.sha256, JobItem.position)
            .where(
                JobItem.job_id == job_id,
                JobItem.chunk_key == chunk_key,
                JobItem.status == JobItemStatus.PENDING.value,
            )
            .order_by(JobItem.position)
        )
        first: dict[str, int] = {}
        for sha256, position in rows:
            first.setdefault(sha256, position)
        return dict(first)

    @staticmethod
    def _score_entry(job: Job, owner: User, sha256: str, data: bytes) -> None:
        try:
            image, choice = JobScoring._read(job.modality, data)
            runner = ModelManager.runner(choice.modality)
            result = ModelManager.run(runner, image.image, heatmap=True)
        except ServiceUnavailable:
            raise  # the chunk is tried again later, by this worker or another
        except AppError as error:
            with unit_of_work():
                _settle(job.id, sha256, status=JobItemStatus.FAILED.value, error=error.code)
            return
        try:
            with unit_of_work() as uow:
                prediction = JobScoring._prediction(uow, job, sha256, image, choice, runner, result)
                db.session.add(prediction)
                db.session.flush()  # the unique (job, entry) index speaks here
                if not _settle(job.id, sha256, status=JobItemStatus.SCORED.value, prediction_id=prediction.id):
                    raise _ItemsGone
                AuditManager.record(
                    AuditAction.PREDICTION_CREATE,
                    actor=owner,
                    target_type="prediction",
                    target_id=prediction.id,
                    details={
                        "job_id": str(job.id),
                        "modality": result.modality,
                        "label": result.label,
                        "model_version": runner.version,
                    },
                )
        except _ItemsGone:
            return
        except IntegrityError:
            JobScoring._link_existing(job.id, sha256)

    @staticmethod
    def _link_existing(job_id: uuid.UUID, sha256: str) -> None:
        """Another delivery of this chunk wrote the entry's prediction first: point the items at it."""
        existing = db.session.scalar(
            select(Prediction.id).where(Prediction.job_id == job_id, Prediction.job_entry_sha256 == sha256)
        )
        if existing is not None:
            with unit_of_work():
                _settle(job_id, sha256, status=JobItemStatus.SCORED.value, prediction_id=existing)

    @staticmethod
    def _read(modality: str | None, data: bytes) -> tuple[ValidatedImage, ModalityChoice]:
        config = current_app.config
        image = validate_image_upload(
            data,
            max_bytes=config["MAX_UPLOAD_BYTES"],
            max_pixels=config["MAX_IMAGE_PIXELS"],
            decode_size=ModelManager.input_size(modality),
        )
        return image, ModelManager.choose_modality(modality, image.image)

    @staticmethod
    def _prediction(uow, job, sha256, image, choice, runner, result) -> Prediction:
        """The row a single upload of this image would have written, with its job and entry."""
        storage = _storage()
        activation_map = result.activation_map
        image_key = _store(uow, storage, PHOTO_KEY_PREFIX, image.data, image.content_type)
        original_key = (
            _store(uow, storage, ORIGINAL_KEY_PREFIX, image.original, image.original_content_type)
            if image.original is not None
            else None
        )
        return Prediction(
            id=uuid.uuid4(),
            owner_id=job.owner_id,
            modality=result.modality,
            modality_detected=choice.detected,
            label=result.label,
            confidence=min(max(result.confidence, 0.0), 1.0),
            probabilities=result.probabilities,
            is_positive=result.is_positive,
            model_name=runner.name,
            model_version=runner.version,
            model_sha256=runner.sha256,
            image_key=image_key,
            image_content_type=image.content_type,
            image_sha256=image.sha256,
            image_width=image.width,
            image_height=image.height,
            original_key=original_key,
            heatmap_key=storage.new_key(HEATMAP_KEY_PREFIX) if activation_map is not None else None,
            activation_map=activation_map.to_bytes() if activation_map is not None else None,
            note=job.note,
            job_id=job.id,
            job_entry_sha256=sha256,
        )
