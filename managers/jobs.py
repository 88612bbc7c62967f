"""Batch jobs: submit an archive, follow it, read its results, cancel it. Scoring is managers.job_scoring.

A submission is checked whole before anything is kept (utils.archives): then its entries are packed
into chunks of JOB_CHUNK_SIZE, each stored as a small zip, and the job and one item per entry are
written in one unit of work (a failure removes the stored chunks again). Only after the commit are
the chunks queued, so a worker never looks for rows that are not there yet.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from flask import current_app
from sqlalchemy import case, delete, func, insert, select, update

from constants import (
    JOB_CHUNK_CONTENT_TYPE,
    JOB_CHUNK_KEY_PREFIX,
    AuditAction,
    JobItemStatus,
    JobStatus,
)
from db import db
from managers.audit import AuditManager
from managers.ownership import get_owned
from managers.pagination import Page, list_page
from managers.transactions import UnitOfWork, unit_of_work
from models import Job, JobItem, Prediction, User, utcnow
from services.job_queue import JobQueue
from services.storage import Storage
from utils.archives import ArchiveEntry, ArchiveLimits, looks_like_zip, read_files, read_zip
from utils.errors import InvalidArchive, NotFound, QueueUnavailable, TooManyJobs
from utils.images import DICOM_FORMAT, sniff_format

log = logging.getLogger(__name__)

ACTIVE_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
NEWEST_FIRST = (Job.created_at.desc(), Job.id.desc())
RESULT_BATCH = 500
_PURGE_BATCH = 200


@dataclass(frozen=True)
class JobCounts:
    total: int = 0
    scored: int = 0
    failed: int = 0
    flagged: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.scored - self.failed


@dataclass(frozen=True)
class ItemFilters:
    status: str | None = None
    flagged: bool | None = None

    def conditions(self, job_id: uuid.UUID) -> list:
        conditions = [JobItem.job_id == job_id]
        if self.status is not None:
            conditions.append(JobItem.status == self.status)
        if self.flagged is not None:
            positive = select(Prediction.id).where(Prediction.job_id == job_id, Prediction.is_positive.is_(True))
            flagged = JobItem.prediction_id.in_(positive)
            conditions.append(flagged if self.flagged else ~flagged | JobItem.prediction_id.is_(None))
        return conditions


def _storage() -> Storage:
    return current_app.extensions["storage"]


def _queue() -> JobQueue:
    return current_app.extensions["job_queue"]


def _limits() -> ArchiveLimits:
    config = current_app.config
    return ArchiveLimits(
        max_entries=config["JOB_MAX_ENTRIES"],
        max_uncompressed_bytes=config["JOB_MAX_UNCOMPRESSED_MB"] * 1024 * 1024,
        max_ratio=config["JOB_MAX_COMPRESSION_RATIO"],
        max_entry_bytes=config["MAX_UPLOAD_BYTES"],
    )


def _entries(files: list[tuple[str | None, BinaryIO]]) -> Iterator[ArchiveEntry]:
    """One zip, or several image files, as entries; a zip among several files is refused as nested."""
    if not files:
        raise InvalidArchive("Attach a zip of images, or the images, as multipart field 'file'.")
    limits = _limits()
    if len(files) == 1:
        stream = files[0][1]
        head = stream.read(4)
        stream.seek(0)
        if looks_like_zip(head):
            return read_zip(stream, limits)
    return read_files(files, limits)


def entry_sha256(job_id: uuid.UUID, data: bytes) -> str:
    """What names an entry's bytes within its job. A DICOM file's plain hash would point at the patient's
    original file wherever else it is kept, so it is keyed by the job instead (duplicates still match)."""
    if sniff_format(data[:132]) == DICOM_FORMAT:
        return hmac.new(job_id.bytes, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


class _ChunkWriter:
    """Packs entries into stored zips of at most size entries, named by position (never by the client's names)."""

    def __init__(self, uow: UnitOfWork, storage: Storage, size: int) -> None:
        self._uow, self._storage, self._size = uow, storage, size
        self._buffer: list[tuple[int, bytes]] = []
        self._key: str | None = None
        self.keys: list[str] = []

    def add(self, position: int, data: bytes) -> str:
        if self._key is None:
            self._key = self._storage.new_key(JOB_CHUNK_KEY_PREFIX)
        key = self._key
        self._buffer.append((position, data))
        if len(self._buffer) >= self._size:
            self.flush()
        return key

    def flush(self) -> None:
        if not self._buffer:
            return
        packed = io.BytesIO()
        # Stored, not deflated: images are compressed already, and workers read these once.
        with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_STORED) as chunk:
            for position, data in self._buffer:
                chunk.writestr(str(position), data)
        self._uow.on_rollback(self._storage.delete_object, self._key)
        self._storage.put_object(self._key, packed.getvalue(), JOB_CHUNK_CONTENT_TYPE)
        self.keys.append(self._key)
        self._buffer, self._key = [], None


def _counts(job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, JobCounts]:
    """Each job's items by outcome, in one query."""
    ids = list(job_ids)
    if not ids:
        return {}
    flagged = func.sum(case((Prediction.is_positive.is_(True), 1), else_=0))
    rows = db.session.execute(
        select(JobItem.job_id, JobItem.status, func.count(), flagged)
        .outerjoin(Prediction, Prediction.id == JobItem.prediction_id)
        .where(JobItem.job_id.in_(ids))
        .group_by(JobItem.job_id, JobItem.status)
    )
    tallies: dict[uuid.UUID, dict[str, int]] = {job_id: {} for job_id in ids}
    for job_id, status, count, positive in rows:
        tally = tallies[job_id]
        tally["total"] = tally.get("total", 0) + count
        if status in (JobItemStatus.SCORED, JobItemStatus.FAILED):
            tally[status] = count
        tally["flagged"] = tally.get("flagged", 0) + (positive or 0)
    return {job_id: JobCounts(**tally) for job_id, tally in tallies.items()}


def with_counts(*jobs: Job) -> None:
    """Give each job its counts (what the API shows as total, scored, failed, flagged)."""
    counts = _counts(job.id for job in jobs)
    for job in jobs:
        job.counts = counts[job.id]


class JobManager:
    @staticmethod
    def submit(
        owner: User, modality: str | None, files: list[tuple[str | None, BinaryIO]], note: str | None = None
    ) -> Job:
        """Check an archive (or several images), keep its entries as chunks, and queue them for scoring."""
        JobManager._check_active_quota(owner)  # before the archive is read: a refusal costs nothing
        entries = _entries(files)
        job = Job(id=uuid.uuid4(), owner_id=owner.id, status=JobStatus.QUEUED.value, modality=modality)
        job.note = (note or "").strip() or None
        with unit_of_work() as uow:
            writer = _ChunkWriter(uow, _storage(), current_app.config["JOB_CHUNK_SIZE"])
            items = JobManager._itemise(job.id, entries, writer)
            writer.flush()
            JobManager.record_submission(owner, job, items, len(writer.keys), modality=modality)
        JobManager._queue_chunks(job, writer.keys)
        with_counts(job)
        return job

    @staticmethod
    def record_submission(owner: User, job: Job, items: list[dict], chunks: int, **details: object) -> None:
        """In the submitting unit of work: the job and its items written and the submission audited (details
        added to the audit event's), the account's active-job quota checked again under its row lock, so that
        two submissions at once cannot both take the last place."""
        db.session.execute(select(User.id).where(User.id == owner.id).with_for_update())
        JobManager._check_active_quota(owner)
        db.session.add(job)
        db.session.flush()
        if items:
            db.session.execute(insert(JobItem), items)
        AuditManager.record(
            AuditAction.JOB_CREATE,
            actor=owner,
            target_type="job",
            target_id=job.id,
            details={"items": len(items), "chunks": chunks, **details},
        )

    @staticmethod
    def _check_active_quota(owner: User) -> None:
        """Refuse a job beyond JOB_MAX_ACTIVE_PER_ACCOUNT queued or running ones of this account (429)."""
        limit = current_app.config["JOB_MAX_ACTIVE_PER_ACCOUNT"]
        active = db.session.scalar(
            select(func.count()).select_from(Job).where(Job.owner_id == owner.id, Job.status.in_(ACTIVE_STATUSES))
        )
        if active >= limit:
            raise TooManyJobs(
                f"At most {limit} jobs of one account may be queued or running at once; wait for one to end, "
                "or cancel one.",
                details={"limit": limit, "active": active},
            )

    @staticmethod
    def _itemise(job_id: uuid.UUID, entries: Iterable[ArchiveEntry], writer: _ChunkWriter) -> list[dict]:
        """One item per entry; the bytes of each distinct entry go into a chunk once, copies share its chunk."""
        items: list[dict] = []
        chunk_of: dict[str, str] = {}
        for position, entry in enumerate(entries):
            item = {"job_id": job_id, "position": position, "name": entry.name, "status": JobItemStatus.PENDING.value}
            if entry.data is None:
                item.update(status=JobItemStatus.FAILED.value, error=entry.error)
            else:
                sha256 = entry_sha256(job_id, entry.data)
                if sha256 not in chunk_of:
                    chunk_of[sha256] = writer.add(position, entry.data)
                item.update(sha256=sha256, chunk_key=chunk_of[sha256])
            items.append(item)
        return items

    @staticmethod
    def _queue_chunks(job: Job, chunk_keys: list[str]) -> None:
        try:
            for key in chunk_keys:
                _queue().enqueue(job.id, key)
        except QueueUnavailable:
            # Kept, not silently waiting for ever: the owner sees a failed job and can submit again.
            with unit_of_work():
                job.status, job.finished_at = JobStatus.FAILED.value, utcnow()
            raise
        if not chunk_keys:  # every entry was refused on arrival: nothing to wait for
            JobManager.finish_if_complete(job.id)
        db.session.refresh(job)

    @staticmethod
    def finish_if_complete(job_id: uuid.UUID) -> None:
        """Mark the job done once no item is pending (any worker may be the one that finishes it)."""
        with unit_of_work():
            pending = db.session.scalar(
                select(func.count())
                .select_from(JobItem)
                .where(JobItem.job_id == job_id, JobItem.status == JobItemStatus.PENDING.value)
            )
            if not pending:
                db.session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
                    .values(status=JobStatus.DONE.value, finished_at=utcnow())
                )

    @staticmethod
    def list_for(owner: User, page: int, per_page: int) -> Page:
        """owner's jobs, newest first."""
        result = list_page(select(Job).order_by(*NEWEST_FIRST), [Job.owner_id == owner.id], page, per_page)
        with_counts(*result.items)
        return result

    @staticmethod
    def get_for(owner: User, job_id: uuid.UUID) -> Job:
        """One of owner's jobs; NotFound for an unknown id and for someone else's alike."""
        job = get_owned(Job.owner_id, job_id, owner, noun="job")
        with_counts(job)
        return job

    @staticmethod
    def items_for(owner: User, job_id: uuid.UUID, filters: ItemFilters, page: int, per_page: int) -> Page:
        """One page of a job's items in archive order, each with the prediction it made (or None)."""
        get_owned(Job.owner_id, job_id, owner, noun="job")
        result = list_page(select(JobItem).order_by(JobItem.position), filters.conditions(job_id), page, per_page)
        ids = [item.prediction_id for item in result.items if item.prediction_id is not None]
        predictions = {p.id: p for p in db.session.scalars(select(Prediction).where(Prediction.id.in_(ids)))}
        for item in result.items:
            item.prediction = predictions.get(item.prediction_id)
        return result

    @staticmethod
    def results_for(owner: User, job_id: uuid.UUID) -> Iterator[dict]:
        """Every item of one of owner's jobs, one result row each, in archive order (read in batches)."""
        get_owned(Job.owner_id, job_id, owner, noun="job")
        return JobManager._result_rows(job_id)

    @staticmethod
    def _result_rows(job_id: uuid.UUID) -> Iterator[dict]:
        after = -1
        while True:
            rows = db.session.execute(
                select(JobItem, Prediction)
                .outerjoin(Prediction, Prediction.id == JobItem.prediction_id)
                .where(JobItem.job_id == job_id, JobItem.position > after)
                .order_by(JobItem.position)
                .limit(RESULT_BATCH)
            ).all()
            for item, prediction in rows:
                yield result_row(item, prediction)
            if len(rows) < RESULT_BATCH:
                return
            after = rows[-1][0].position

    @staticmethod
    def cancel(owner: User, job_id: uuid.UUID, *, purge: bool = False) -> Job:
        """Stop a job: its unscored items are dropped; with purge, the predictions it made are deleted too."""
        job = get_owned(Job.owner_id, job_id, owner, noun="job")
        chunk_keys = db.session.scalars(
            select(JobItem.chunk_key)
            .where(JobItem.job_id == job.id, JobItem.status == JobItemStatus.PENDING.value)
            .distinct()
        ).all()
        with unit_of_work():
            if job.status in ACTIVE_STATUSES:
                job.status, job.finished_at = JobStatus.CANCELLED.value, utcnow()
            # A worker scoring one of these now finds its item gone and undoes its prediction.
            dropped = db.session.execute(
                delete(JobItem).where(JobItem.job_id == job.id, JobItem.status == JobItemStatus.PENDING.value)
            ).rowcount
            AuditManager.record(
                AuditAction.JOB_CANCEL,
                actor=owner,
                target_type="job",
                target_id=job.id,
                details={"dropped_items": dropped, "purge": purge},
            )
        JobManager._discard_chunks([key for key in chunk_keys if key])
        if purge:
            JobManager._purge_predictions(owner, job.id)
        with_counts(job)
        return job

    @staticmethod
    def _discard_chunks(keys: list[str]) -> None:
        storage = _storage()
        for key in keys:
            try:
                storage.delete_object(key)
            except Exception:  # a chunk left behind holds no result; the job no longer refers to it
                log.warning("could not delete a cancelled job's chunk")

    @staticmethod
    def _purge_predictions(owner: User, job_id: uuid.UUID) -> None:
        """Delete the job's predictions, objects first (as PredictionManager.delete does), in batches."""
        storage = _storage()
        while True:
            batch = db.session.execute(
                select(Prediction.id, Prediction.image_key, Prediction.heatmap_key, Prediction.original_key)
                .where(Prediction.job_id == job_id, Prediction.owner_id == owner.id)
                .limit(_PURGE_BATCH)
            ).all()
            if not batch:
                return
            with unit_of_work():
                for _id, *keys in batch:
                    for key in keys:
                        if key:
                            storage.delete_object(key)
                db.session.execute(delete(Prediction).where(Prediction.id.in_([row[0] for row in batch])))
                AuditManager.record(
                    AuditAction.PREDICTION_DELETE,
                    actor=owner,
                    target_type="job",
                    target_id=job_id,
                    details={"owner_id": str(owner.id), "predictions": len(batch)},
                )

    # -- admin: everyone's jobs, every read of someone else's audited ------------------------

    @staticmethod
    def list_all(admin: User, owner_id: uuid.UUID | None, page: int, per_page: int) -> Page:
        conditions = [Job.owner_id == owner_id] if owner_id is not None else []

        def audit(result: Page) -> None:
            AuditManager.record(
                AuditAction.ADMIN_LIST_JOBS,
                actor=admin,
                target_type="job",
                details={
                    "user_id": str(owner_id) if owner_id else None,
                    "page": result.page,
                    "job_ids": [str(job.id) for job in result.items if job.owner_id != admin.id],
                },
            )

        result = list_page(select(Job).order_by(*NEWEST_FIRST), conditions, page, per_page, audit=audit)
        with_counts(*result.items)
        return result

    @staticmethod
    def get_any(admin: User, job_id: uuid.UUID) -> Job:
        job = db.session.get(Job, job_id)
        if job is None:
            raise NotFound("No such job.")
        if job.owner_id != admin.id:
            with unit_of_work():
                AuditManager.record(
                    AuditAction.JOB_READ,
                    actor=admin,
                    target_type="job",
                    target_id=job.id,
                    details={"owner_id": str(job.owner_id)},
                )
        with_counts(job)
        return job


def result_row(item: JobItem, prediction: Prediction | None) -> dict:
    """One line of a job's results: the entry, and what it was scored as (or why not)."""
    return {
        "name": item.name,
        "sha256": item.sha256,
        "prediction_id": str(prediction.id) if prediction is not None else None,
        "modality": prediction.modality if prediction is not None else None,
        "label": prediction.label if prediction is not None else None,
        "probabilities": prediction.probabilities if prediction is not None else None,
        "flagged": prediction.is_positive if prediction is not None else None,
        "error": item.error,
        "status": item.status,
    }
