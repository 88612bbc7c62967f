"""The Celery tasks: each a thin wrapper around a manager, as a resource is."""

from __future__ import annotations

import uuid

from celery import shared_task

from constants import DELIVER_REPORTS_TASK, SCORE_CHUNK_TASK
from managers.job_scoring import JobScoring
from managers.pacs import PacsReports
from utils.errors import ServiceUnavailable

# Storage, database or a model away: the chunk is tried again, backing off, before it is given up.
RETRY_LIMIT = 8


@shared_task(
    name=SCORE_CHUNK_TASK,
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=RETRY_LIMIT,
    ignore_result=True,
)
def score_chunk(job_id: str, chunk_key: str) -> None:
    """Score one stored chunk of a job (safe to run again: settled items are skipped)."""
    JobScoring.score_chunk(uuid.UUID(job_id), chunk_key)


@shared_task(name=DELIVER_REPORTS_TASK, acks_late=True, ignore_result=True)
def deliver_reports(job_id: str) -> None:
    """Send a PACS job's reports the PACS has not taken yet; those it refuses again are rescheduled, later each time."""
    PacsReports.deliver_and_schedule(uuid.UUID(job_id))
