"""Jobs from the clinic's PACS, and their reports sent back to it (DICOMweb: services.dicomweb).

Taking studies: PacsJobs.submit finds each study's chest radiographs (QIDO-RS), fetches them (WADO-RS)
and hands them to the ordinary job machinery: the same chunks, workers and scoring as an uploaded
archive, so each instance is read and de-identified exactly as an upload is (utils.dicom). The one
difference is what each item keeps: the PACS's study, series and SOP instance UIDs of its instance
(models.job explains why, and that nothing else of the file is kept beside it).

Sending back: once an item is scored, PacsReports builds its prediction's SR about the PACS's original
(the kept de-identified file, given the original's three UIDs in memory only) and stores it into the
same study by STOW-RS. An item's report is pending, then sent, or failed (tried again after
DICOMWEB_RETRY_S seconds, doubling up to DICOMWEB_RETRY_MAX_S, until the PACS takes it); each try
counts in report_attempts. `flask jobs deliver` sends every report still waiting, for a deployment
whose retries were lost with a restart (the in-process pool keeps no timers across one).
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import select, update

from cnn_model.modalities import MODALITIES, get_spec
from cnn_model.specs import ModalitySpec
from constants import JobItemStatus, JobSource, JobStatus, ReportDelivery
from db import db
from managers.hospital_formats import MODEL_CARDS_PATH, finding_report
from managers.jobs import JobManager, _ChunkWriter, with_counts
from managers.transactions import unit_of_work
from models import Job, JobItem, Prediction, User, utcnow
from services import dicomweb
from services.interop import dicom_sr
from services.job_queue import JobQueue
from services.storage import Storage
from utils.archives import ENTRY_TOO_LARGE, ArchiveEntry
from utils.errors import AppError, InvalidArchive, StudyNotFound

log = logging.getLogger(__name__)

WAITING = (ReportDelivery.PENDING.value, ReportDelivery.FAILED.value)
# The SR sent to the PACS is a second object of the prediction (see dicom_sr.structured_report's copy).
PACS_COPY = "pacs "
# The doubling of the retry delay stops here (2**7 times DICOMWEB_RETRY_S), before DICOMWEB_RETRY_MAX_S caps it.
_MAX_DOUBLINGS = 7


def _pacs_kind() -> ModalitySpec:
    """The kind a PACS study is read as: the modality whose spec names the DICOM modalities it reads."""
    return next(get_spec(m) for m in MODALITIES if get_spec(m).dicom_modalities)


def _storage() -> Storage:
    return current_app.extensions["storage"]


def _queue() -> JobQueue:
    return current_app.extensions["job_queue"]


def _entries(refs: list[dicomweb.InstanceRef]) -> Iterable[tuple[dicomweb.InstanceRef, ArchiveEntry]]:
    """Each instance fetched, named by its study and its place there; one larger than an upload may be is refused."""
    max_bytes = current_app.config["MAX_UPLOAD_BYTES"]
    place: dict[str, int] = {}
    for ref in refs:
        place[ref.study_uid] = place.get(ref.study_uid, 0) + 1
        name = f"{ref.study_uid}/{place[ref.study_uid]}"
        data = dicomweb.retrieve(ref)
        yield ref, ArchiveEntry(name, data) if len(data) <= max_bytes else ArchiveEntry(name, None, ENTRY_TOO_LARGE)


class PacsJobs:
    @staticmethod
    def submit(owner: User, study_uids: list[str], note: str | None = None) -> Job:
        """Fetch the instances of these studies the PACS kind reads (chest radiographs) and queue them as one job."""
        JobManager._check_active_quota(owner)
        spec = _pacs_kind()
        limit = current_app.config["JOB_MAX_ENTRIES"]
        refs: list[dicomweb.InstanceRef] = []
        for study_uid in dict.fromkeys(study_uids):  # each study once, in the order given
            found = dicomweb.instances_of(study_uid, spec.dicom_modalities, spec.dicom_body_part, limit - len(refs))
            if not found:
                raise StudyNotFound(details={"study_instance_uid": study_uid})
            refs.extend(found)
            if len(refs) >= limit:
                raise InvalidArchive(
                    f"These studies hold more than {limit} radiographs; send fewer studies at once.",
                    details={"reason": "too_many_entries", "limit": limit},
                )
        job = Job(
            id=uuid.uuid4(),
            owner_id=owner.id,
            status=JobStatus.QUEUED.value,
            modality=spec.name,
            source=JobSource.PACS.value,
        )
        job.note = (note or "").strip() or None
        fetched = list(_entries(refs))  # before the unit of work: the PACS may be slow, no row waits on it
        with unit_of_work() as uow:
            writer = _ChunkWriter(uow, _storage(), current_app.config["JOB_CHUNK_SIZE"])
            items = JobManager._itemise(job.id, (entry for _ref, entry in fetched), writer)
            writer.flush()
            for item, (ref, _entry) in zip(items, fetched, strict=True):
                item.update(
                    pacs_study_uid=ref.study_uid,
                    pacs_series_uid=ref.series_uid,
                    pacs_instance_uid=ref.instance_uid,
                    report_status=ReportDelivery.PENDING.value if item["status"] == JobItemStatus.PENDING else None,
                )
            JobManager.record_submission(
                owner,
                job,
                items,
                len(writer.keys),
                modality=spec.name,
                source=JobSource.PACS.value,
                studies=len(dict.fromkeys(study_uids)),
            )
        JobManager._queue_chunks(job, writer.keys)
        with_counts(job)
        return job


def _retry_delay(attempts: int) -> int:
    config = current_app.config
    doublings = min(max(attempts - 1, 0), _MAX_DOUBLINGS)
    return min(config["DICOMWEB_RETRY_S"] * 2**doublings, config["DICOMWEB_RETRY_MAX_S"])


def pacs_report(item: JobItem, prediction: Prediction):
    """The prediction's SR about the PACS's original of the item: the kept file, given the original's UIDs here."""
    from pydicom import dcmread

    if not prediction.original_key:
        raise ValueError("no DICOM original")
    source = dcmread(io.BytesIO(_storage().get_object(prediction.original_key).data))
    source.StudyInstanceUID = item.pacs_study_uid
    source.SeriesInstanceUID = item.pacs_series_uid
    source.SOPInstanceUID = item.pacs_instance_uid
    return dicom_sr.structured_report(finding_report(prediction, MODEL_CARDS_PATH), source, copy=PACS_COPY)


class PacsReports:
    @staticmethod
    def deliver(job_id: uuid.UUID) -> tuple[int, int]:
        """Send the job's waiting reports once each: how many are still waiting, and the most tries one has had."""
        with unit_of_work():  # an item that was not scored has nothing to send
            db.session.execute(
                update(JobItem)
                .where(
                    JobItem.job_id == job_id,
                    JobItem.status == JobItemStatus.FAILED.value,
                    JobItem.report_status == ReportDelivery.PENDING.value,
                )
                .values(report_status=None)
                .execution_options(synchronize_session=False)
            )
        rows = db.session.execute(
            select(JobItem, Prediction)
            .join(Prediction, Prediction.id == JobItem.prediction_id)
            .where(
                JobItem.job_id == job_id,
                JobItem.status == JobItemStatus.SCORED.value,
                JobItem.report_status.in_(WAITING),
            )
            .order_by(JobItem.position)
        ).all()
        left, most = 0, 0
        for item, prediction in rows:
            error = PacsReports._send(item, prediction)
            attempts = item.report_attempts + 1
            with unit_of_work():
                db.session.execute(
                    update(JobItem)
                    .where(JobItem.id == item.id)
                    .values(
                        report_status=ReportDelivery.FAILED.value if error else ReportDelivery.SENT.value,
                        report_attempts=attempts,
                        report_error=error,
                        report_sent_at=None if error else utcnow(),
                    )
                    .execution_options(synchronize_session=False)
                )
            if error:
                left, most = left + 1, max(most, attempts)
        return left, most

    @staticmethod
    def _send(item: JobItem, prediction: Prediction) -> str | None:
        """Store the item's SR into its study; None once the PACS took it, else the error code."""
        try:
            dicomweb.store([pacs_report(item, prediction)], item.pacs_study_uid)
        except AppError as error:  # the PACS away or refusing, storage away
            return error.code
        except Exception as error:  # the message may quote the file; the type says enough
            log.error("building the SR for a PACS job item failed: %s", type(error).__name__)
            return "report_not_built"
        return None

    @staticmethod
    def deliver_and_schedule(job_id: uuid.UUID) -> int:
        """Send the job's waiting reports; have those the PACS did not take sent again later. How many wait."""
        left, attempts = PacsReports.deliver(job_id)
        if left:
            _queue().enqueue_delivery(job_id, _retry_delay(attempts))
        return left

    @staticmethod
    def waiting_jobs() -> list[uuid.UUID]:
        """The jobs with a report not yet taken by the PACS."""
        return list(
            db.session.scalars(
                select(JobItem.job_id).where(JobItem.report_status.in_(WAITING)).distinct().order_by(JobItem.job_id)
            )
        )
