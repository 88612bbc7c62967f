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

from constants import AuditAction, JobItemStatus, JobSource, JobStatus
from db import db
from managers.audit import AuditManager
from managers.jobs import ACTIVE_STATUSES, JobManager
from managers.models import ModelManager
from managers.pacs import PacsReports
from managers.predictions import PredictionManager
from managers.transactions import unit_of_work
from managers.upload_quota import UploadQuota
from models import Job, JobItem, Prediction, User
from services.storage import Storage
from utils.errors import AppError, ServiceUnavailable

log = logging.getLogger(__name__)


class _ItemsGone(Exception):
    """The items this prediction was for were settled or dropped meanwhile: undo it."""


def _storage() -> Storage:
    return current_app.extensions["storage"]


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
        if job.source == JobSource.PACS:
            PacsReports.deliver_and_schedule(job_id)  # each scored item's SR back into its study

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
            image, choice = PredictionManager.read_upload(job.modality, data)
            UploadQuota.check(owner, len(image.data) + len(image.original or b""))
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
                prediction = PredictionManager.stored_prediction(
                    uow, owner, image, choice, runner, result, note=job.note, job_id=job.id, job_entry_sha256=sha256
                )
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
        except ServiceUnavailable:
            raise  # storage or the database away while storing: the chunk is retried, the item stays pending
        except AppError as error:  # the account was disabled or filled up since the job was sent
            with unit_of_work():
                _settle(job.id, sha256, status=JobItemStatus.FAILED.value, error=error.code)
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
