"""Batch jobs: an archive of images owned by one account, and one item per archive entry.

Each entry that decodes becomes an ordinary Prediction carrying the job's id; the item points at it.
An item's sha256 names its bytes within the job: entries with the same bytes are scored once.

A job whose source is the PACS keeps, with each item, the UIDs the PACS files the instance under: the
de-identified copy MedSight keeps has new UIDs, and the SR sent back must point at the original. These
three UIDs are the one thing read from a DICOM file that is kept beside it (never in it), and only for
such a job; they go with the job when its owner's account is deleted.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from constants import JOB_ITEM_NAME_MAX_LENGTH, JOB_NOTE_MAX_LENGTH, JobItemStatus, JobSource, JobStatus
from db import db
from models.base import CreatedAtMixin, UTCDateTime, UUIDPrimaryKeyMixin
from models.prediction import STORAGE_KEY_LENGTH

UID_LENGTH = 64  # a DICOM UID's longest (PS3.5 9.1)


class Job(UUIDPrimaryKeyMixin, CreatedAtMixin, db.Model):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_owner_id_created_at", "owner_id", "created_at"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=JobStatus.QUEUED.value)
    # The modality every image is read as; None: the gate decides per image.
    modality: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(JOB_NOTE_MAX_LENGTH))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where the images came from: the request (upload) or the configured PACS (pacs).
    source: Mapped[str] = mapped_column(
        String(16), nullable=False, default=JobSource.UPLOAD.value, server_default=JobSource.UPLOAD.value
    )

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status} owner={self.owner_id}>"


class JobItem(db.Model):
    __tablename__ = "job_items"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        # A chunk's pending items (workers), a job's counts by status, its copies of one image.
        Index("ix_job_items_job_id_chunk_key_status", "job_id", "chunk_key", "status"),
        Index("ix_job_items_job_id_sha256", "job_id", "sha256"),
        # The reports still on their way to the PACS, across jobs (`flask jobs deliver`).
        Index("ix_job_items_report_status", "report_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # 0-based order in the archive
    name: Mapped[str] = mapped_column(String(JOB_ITEM_NAME_MAX_LENGTH), nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=JobItemStatus.PENDING.value)
    # The stored chunk holding this entry's bytes until it is scored; None for entries refused on arrival.
    chunk_key: Mapped[str | None] = mapped_column(String(STORAGE_KEY_LENGTH))
    prediction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL"), index=True
    )
    error: Mapped[str | None] = mapped_column(String(64))

    # A PACS job's item: where the PACS keeps the instance (see the module), and its SR's way back there
    # (constants.ReportDelivery; None for an upload's item or one that was not scored), tries so far, last error.
    pacs_study_uid: Mapped[str | None] = mapped_column(String(UID_LENGTH))
    pacs_series_uid: Mapped[str | None] = mapped_column(String(UID_LENGTH))
    pacs_instance_uid: Mapped[str | None] = mapped_column(String(UID_LENGTH))
    report_status: Mapped[str | None] = mapped_column(String(16))
    report_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    report_error: Mapped[str | None] = mapped_column(String(64))
    report_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
