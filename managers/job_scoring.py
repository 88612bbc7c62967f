"""Scoring one chunk of a batch job into predictions, exactly once per distinct entry.

A worker (Celery or the embedded pool) calls JobScoring.score_chunk(job_id, chunk_key). Each distinct
entry is scored and written: the photo stored, the Prediction (with its job id and the entry's sha256)
and its audit event added, and every pending item of the job holding those bytes marked scored. Two
things keep a chunk that is delivered twice (a worker lost mid-chunk, the broker handing the chunk to
another) from writing anything twice: items already settled are not scored again, and the unique
(job_id, job_entry_sha256) index refuses a second prediction for an entry. Items a cancellation dropped
meanwhile make the unit of work undo its prediction.

A batch of entries is written in one unit of work (one commit, the account's row held once); where
that cannot be done whole, because one entry meets one of the cases above or the account's limits, the
batch is undone and each entry written in a unit of work of its own, so that it alone fails.

Entries are read in batches of BATCH_SIZE: each decoded, the gate asked about all of them at once,
the capture check applied, and the ones left run through their modality's model together
(ModelRunner.predict_batch, the same answers as one by one). While the entries of one batch are
written, a thread reads the next batch through the models (the interpreters let go of the GIL), so
that the models' time overlaps the waits for storage and the database. An entry refused on the way
fails alone, with its error code.

The heatmap is not drawn here: as for a single upload, the activation map is kept with the row and
the PNG made on first view.
"""

from __future__ import annotations

import io
import logging
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import NamedTuple

from flask import current_app
from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from cnn_model.runtime import ModelRunner
from cnn_model.runtime import Prediction as RunnerPrediction
from constants import AuditAction, JobItemStatus, JobSource, JobStatus
from db import db
from managers.audit import AuditManager
from managers.jobs import ACTIVE_STATUSES, JobManager
from managers.models import ModalityChoice, ModelManager
from managers.pacs import PacsReports
from managers.predictions import PredictionManager
from managers.transactions import unit_of_work
from managers.upload_quota import UploadQuota
from models import Job, JobItem, Prediction, User
from services.storage import Storage
from utils.errors import AppError, ServiceUnavailable, StorageQuotaExceeded
from utils.images import ValidatedImage

log = logging.getLogger(__name__)


BATCH_SIZE = 16  # entries decoded, gated and run through the models together


class _ItemsGone(Exception):
    """The items this prediction was for were settled or dropped meanwhile: undo it."""


class _Scored(NamedTuple):
    image: ValidatedImage
    choice: ModalityChoice
    runner: ModelRunner
    result: RunnerPrediction


_Outcome = _Scored | AppError


@contextmanager
def _refusal_of(outcomes: dict[str, _Outcome], sha256: str) -> Iterator[None]:
    """Keep an AppError raised inside as the entry's outcome (it fails alone); ServiceUnavailable propagates."""
    try:
        yield
    except ServiceUnavailable:
        raise
    except AppError as error:
        outcomes[sha256] = error


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


def _settle_scored(job_id: uuid.UUID, predictions: dict[str, uuid.UUID]) -> set[str]:
    """Mark the job's pending items with these bytes (sha256 -> its prediction) scored, in one statement; the
    hashes that had any (a hash missing: someone else settled or dropped its items)."""
    if not predictions:
        return set()
    settled = db.session.execute(
        update(JobItem)
        .where(
            JobItem.job_id == job_id,
            JobItem.sha256.in_(predictions),
            JobItem.status == JobItemStatus.PENDING.value,
        )
        .values(status=JobItemStatus.SCORED.value, prediction_id=case(predictions, value=JobItem.sha256))
        .returning(JobItem.sha256)
        .execution_options(synchronize_session=False)
    )
    return set(settled.scalars())


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
                scored_batches = JobScoring._scored_ahead(job.modality, chunk, list(groups.items()))
                with closing(scored_batches):
                    for outcomes in scored_batches:
                        if not _is_active(job_id):
                            return
                        JobScoring._write_batch(job, owner, JobScoring._within_quota(owner, outcomes))
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
    def _scored_ahead(
        modality: str | None, chunk: zipfile.ZipFile, entries: list[tuple[str, int]]
    ) -> Iterator[list[tuple[str, _Outcome]]]:
        """The outcomes of the entries (sha256, position in chunk), BATCH_SIZE at a time and in order, each batch
        scored in a thread while the one before is written (at most one batch ahead)."""
        app = current_app._get_current_object()

        def score(batch: list[tuple[str, int]]) -> list[tuple[str, _Outcome]]:
            with app.app_context():
                return JobScoring._score_batch(modality, batch_bytes(batch))

        def batch_bytes(batch: list[tuple[str, int]]) -> list[tuple[str, bytes]]:
            return [(sha256, chunk.read(str(position))) for sha256, position in batch]

        batches = [entries[start : start + BATCH_SIZE] for start in range(0, len(entries), BATCH_SIZE)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medsight-job-batch") as pool:
            ahead: Future | None = None
            try:
                for index, batch in enumerate(batches):
                    current = ahead if ahead is not None else pool.submit(score, batch)
                    following = batches[index + 1] if index + 1 < len(batches) else None
                    ahead = pool.submit(score, following) if following is not None else None
                    yield current.result()
            finally:
                if ahead is not None:
                    ahead.cancel()

    @staticmethod
    def _score_batch(modality: str | None, entries: list[tuple[str, bytes]]) -> list[tuple[str, _Outcome]]:
        """Each entry (sha256, bytes) scored, or the AppError that refused it, in the entries' order; no database.

        ServiceUnavailable (a model that cannot load) propagates: the chunk is tried again later, by this worker or
        another, and the entries written before stay written.
        """
        outcomes: dict[str, _Outcome] = {}
        images: dict[str, ValidatedImage] = {}
        for sha256, data in entries:
            with _refusal_of(outcomes, sha256):
                images[sha256] = PredictionManager.decode_upload(modality, data)
        detected = ModelManager.detect_modalities(modality, [image.image for image in images.values()])
        choices: dict[str, ModalityChoice] = {}
        for (sha256, image), result in zip(images.items(), detected, strict=True):
            with _refusal_of(outcomes, sha256):
                choices[sha256] = PredictionManager.choose_for(modality, image, result)
        by_modality: dict[str, list[str]] = {}
        for sha256, choice in choices.items():
            by_modality.setdefault(choice.modality, []).append(sha256)
        for chosen, hashes in by_modality.items():
            runner = ModelManager.runner(chosen)
            results = ModelManager.run_batch(runner, [images[sha256].image for sha256 in hashes], heatmap=True)
            for sha256, result in zip(hashes, results, strict=True):
                outcomes[sha256] = _Scored(images[sha256], choices[sha256], runner, result)
        return [(sha256, outcomes[sha256]) for sha256, _data in entries]

    @staticmethod
    def _within_quota(owner: User, outcomes: list[tuple[str, _Outcome]]) -> list[tuple[str, _Outcome]]:
        """outcomes with the scored entries that would take the account past its storage quota refused: one look at
        the account where all of them fit together, each entry's own where they do not (writing checks again)."""
        sizes = {
            sha256: len(outcome.image.data) + len(outcome.image.original or b"")
            for sha256, outcome in outcomes
            if isinstance(outcome, _Scored)
        }
        try:
            if sizes:
                UploadQuota.check(owner, sum(sizes.values()))
            return outcomes
        except StorageQuotaExceeded:
            pass
        checked: dict[str, _Outcome] = dict(outcomes)
        for sha256, size in sizes.items():
            with _refusal_of(checked, sha256):
                UploadQuota.check(owner, size)
        return list(checked.items())

    @staticmethod
    def _write_batch(job: Job, owner: User, outcomes: list[tuple[str, _Outcome]]) -> None:
        """Keep a batch's outcomes in one unit of work: the photos stored, the account's row held and its quota
        checked once, one commit. Where any entry cannot be written so (a copy of the chunk wrote it first, its
        items were dropped, the account filled up or was disabled meanwhile), all of it is undone and each entry
        is written alone (_write_entry), deciding for itself."""
        try:
            with unit_of_work() as uow:
                written = {
                    sha256: JobScoring._recorded(uow, job, owner, sha256, outcome)
                    for sha256, outcome in outcomes
                    if isinstance(outcome, _Scored)
                }
                if written:  # a batch of refusals only stores nothing: no quota to hold
                    UploadQuota.admit(owner, sum(prediction.stored_bytes for prediction in written.values()))
                db.session.add_all(written.values())
                db.session.flush()  # the unique (job, entry) index speaks here
                for sha256, outcome in outcomes:
                    if isinstance(outcome, AppError):
                        _settle(job.id, sha256, status=JobItemStatus.FAILED.value, error=outcome.code)
                predictions = {sha256: prediction.id for sha256, prediction in written.items()}
                if _settle_scored(job.id, predictions) != predictions.keys():
                    raise _ItemsGone
                for prediction in written.values():
                    JobScoring._audit(job, owner, prediction)
        except ServiceUnavailable:
            raise  # storage or the database away: the chunk is retried, its items stay pending
        except (_ItemsGone, AppError, IntegrityError):
            for sha256, outcome in outcomes:
                JobScoring._write_entry(job, owner, sha256, outcome)

    @staticmethod
    def _recorded(uow, job: Job, owner: User, sha256: str, scored: _Scored) -> Prediction:
        """The prediction of a scored entry of job, its photo stored in uow; the account not yet admitted."""
        image, choice, runner, result = scored
        return PredictionManager.stored_prediction(
            uow,
            owner,
            image,
            choice,
            runner,
            result,
            note=job.note,
            job_id=job.id,
            job_entry_sha256=sha256,
            admit=False,
        )

    @staticmethod
    def _audit(job: Job, owner: User, prediction: Prediction) -> None:
        AuditManager.record(
            AuditAction.PREDICTION_CREATE,
            actor=owner,
            target_type="prediction",
            target_id=prediction.id,
            details={
                "job_id": str(job.id),
                "modality": prediction.modality,
                "label": prediction.label,
                "model_version": prediction.model_version,
            },
        )

    @staticmethod
    def _write_entry(job: Job, owner: User, sha256: str, outcome: _Outcome) -> None:
        """Keep a scored entry as a prediction of the job and settle its items, or settle them failed."""
        if isinstance(outcome, AppError):
            with unit_of_work():
                _settle(job.id, sha256, status=JobItemStatus.FAILED.value, error=outcome.code)
            return
        try:
            with unit_of_work() as uow:
                prediction = JobScoring._recorded(uow, job, owner, sha256, outcome)
                UploadQuota.admit(owner, prediction.stored_bytes)
                db.session.add(prediction)
                db.session.flush()  # the unique (job, entry) index speaks here
                if not _settle(job.id, sha256, status=JobItemStatus.SCORED.value, prediction_id=prediction.id):
                    raise _ItemsGone
                JobScoring._audit(job, owner, prediction)
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
