"""What a job's page shows: how far it is and when it should end, the results to look at first, the failures.

The estimate is the job's own pace so far: the items settled since it was submitted over the time that
took, applied to the items still pending. It needs one settled item to say anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import case, or_, select

from cnn_model.conformal import UNCERTAIN
from constants import JobItemStatus
from db import db
from managers.jobs import ACTIVE_STATUSES, JobCounts, JobManager
from managers.ownership import get_owned
from models import Job, JobItem, Prediction, User, utcnow

REVIEW_LIMIT = 60
FAILED_LIMIT = 100


@dataclass(frozen=True)
class JobProgress:
    job: Job
    counts: JobCounts
    eta_seconds: int | None

    @property
    def active(self) -> bool:
        return self.job.status in ACTIVE_STATUSES

    @property
    def settled(self) -> int:
        return self.counts.scored + self.counts.failed

    @property
    def percent(self) -> int:
        """Whole percent settled; 100 only once nothing is pending."""
        if not self.counts.total:
            return 100
        percent = self.settled * 100 // self.counts.total
        return 100 if not self.counts.pending else min(percent, 99)


@dataclass(frozen=True)
class ReviewItem:
    """A scored entry worth a look first: flagged, or one the model could not narrow to one finding."""

    item: JobItem
    prediction: Prediction


def _eta_seconds(job: Job, counts: JobCounts) -> int | None:
    if job.status not in ACTIVE_STATUSES or not counts.pending:
        return None
    settled = counts.scored + counts.failed
    if not settled:
        return None
    elapsed = (utcnow() - job.created_at).total_seconds()
    return max(1, round(elapsed / settled * counts.pending))


class JobProgressManager:
    @staticmethod
    def progress_for(owner: User, job_id: uuid.UUID) -> JobProgress:
        """One of owner's jobs with its counts and an estimate of the time left (None until there is a pace)."""
        job = JobManager.get_for(owner, job_id)
        return JobProgress(job=job, counts=job.counts, eta_seconds=_eta_seconds(job, job.counts))

    @staticmethod
    def review_items(owner: User, job_id: uuid.UUID, limit: int = REVIEW_LIMIT) -> list[ReviewItem]:
        """The job's flagged results, then its uncertain ones, in archive order within each; one per prediction."""
        get_owned(Job.owner_id, job_id, owner, noun="job")
        flagged_first = case((Prediction.is_positive.is_(True), 0), else_=1)
        rows = db.session.execute(
            select(JobItem, Prediction)
            .join(Prediction, Prediction.id == JobItem.prediction_id)
            .where(
                JobItem.job_id == job_id,
                JobItem.status == JobItemStatus.SCORED.value,
                or_(Prediction.is_positive.is_(True), Prediction.certainty == UNCERTAIN),
            )
            .order_by(flagged_first, JobItem.position)
            .limit(limit * 2)
        ).all()
        seen: set[uuid.UUID] = set()
        picked: list[ReviewItem] = []
        for item, prediction in rows:
            if prediction.id not in seen and len(picked) < limit:
                seen.add(prediction.id)
                picked.append(ReviewItem(item, prediction))
        return picked

    @staticmethod
    def failed_items(owner: User, job_id: uuid.UUID, limit: int = FAILED_LIMIT) -> list[JobItem]:
        """The job's entries that could not be scored, in archive order, each with its error code."""
        get_owned(Job.owner_id, job_id, owner, noun="job")
        return list(
            db.session.scalars(
                select(JobItem)
                .where(JobItem.job_id == job_id, JobItem.status == JobItemStatus.FAILED.value)
                .order_by(JobItem.position)
                .limit(limit)
            )
        )
