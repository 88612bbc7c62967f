"""The storage sweep: stored objects that no record refers to, left by a crash mid-upload, are removed.

An upload stores its files before its record is committed, and undoes them if the commit fails; a
worker killed in between (or a compensation that could not reach storage) leaves medical photos that
nothing points to. The sweep lists what storage holds, keeps anything younger than the grace period
(an upload may be between its put and its commit right now) and anything a prediction refers to, and
removes the rest: orphaned photos, heatmaps and originals, chunks of batch jobs that are over (or
gone), temporary files of writes that never finished, unfinished multipart uploads. Only our own key
prefixes are touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from constants import (
    HEATMAP_KEY_PREFIX,
    JOB_CHUNK_KEY_PREFIX,
    ORIGINAL_KEY_PREFIX,
    PHOTO_KEY_PREFIX,
    THUMBNAIL_KEY_PREFIX,
    JobStatus,
)
from db import db
from models import Job, JobItem, Prediction, utcnow
from services.storage import ListedObject, Storage

SWEPT_PREFIXES = frozenset(
    {PHOTO_KEY_PREFIX, HEATMAP_KEY_PREFIX, ORIGINAL_KEY_PREFIX, THUMBNAIL_KEY_PREFIX, JOB_CHUNK_KEY_PREFIX}
)
# A batch job's stored chunk is wanted while the job may still score it.
_JOB_WAITING = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
DEFAULT_GRACE = timedelta(minutes=60)
_BATCH = 500


@dataclass
class SweepReport:
    examined: int = 0
    too_recent: int = 0
    referenced: int = 0
    orphans: list[ListedObject] = field(default_factory=list)
    failed: list[tuple[ListedObject, str]] = field(default_factory=list)
    dry_run: bool = False


def _referenced(keys: list[str]) -> set[str]:
    """Which of these keys a prediction refers to (as its photo, heatmap or original, or its photo's thumbnail), or
    a job still to score (as a chunk of its images)."""
    found: set[str] = set()
    for column in (Prediction.image_key, Prediction.heatmap_key, Prediction.original_key):
        found.update(db.session.scalars(select(column).where(column.in_(keys))))
    # A thumbnail is kept while its photo is (managers.predictions.thumbnail_key: the photo's key, another prefix).
    thumbnail_prefix = f"{THUMBNAIL_KEY_PREFIX}/"
    thumbnails = {
        f"{PHOTO_KEY_PREFIX}/{key.removeprefix(thumbnail_prefix)}": key
        for key in keys
        if key.startswith(thumbnail_prefix)
    }
    if thumbnails:
        photos = db.session.scalars(select(Prediction.image_key).where(Prediction.image_key.in_(thumbnails)))
        found.update(thumbnails[photo] for photo in photos)
    waiting = select(JobItem.chunk_key).join(Job, Job.id == JobItem.job_id).where(Job.status.in_(_JOB_WAITING))
    found.update(db.session.scalars(waiting.where(JobItem.chunk_key.in_(keys)).distinct()))
    return found


def _batches(items: Iterable[ListedObject]) -> Iterator[list[ListedObject]]:
    batch: list[ListedObject] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class StorageSweep:
    @staticmethod
    def run(*, older_than: timedelta = DEFAULT_GRACE, dry_run: bool = False) -> SweepReport:
        """Find (and unless dry_run, remove) what storage holds that no prediction refers to."""
        storage: Storage = current_app.extensions["storage"]
        cutoff = utcnow() - older_than
        report = SweepReport(dry_run=dry_run)

        def candidates() -> Iterator[ListedObject]:
            # Listed prefix by prefix: whatever else shares the bucket (other prefixes' objects and unfinished
            # multipart uploads) is never even seen.
            for prefix in sorted(SWEPT_PREFIXES):
                for listed in storage.list_objects(prefix):
                    report.examined += 1
                    if listed.modified_at > cutoff:
                        report.too_recent += 1
                    else:
                        yield listed

        for batch in _batches(candidates()):
            referenced = _referenced([listed.key for listed in batch if not listed.partial])
            report.referenced += len(referenced)
            orphans = [listed for listed in batch if listed.partial or listed.key not in referenced]
            report.orphans.extend(orphans)
            if not dry_run:
                for orphan in orphans:
                    try:
                        if orphan.partial:
                            storage.delete_partial(orphan)
                        else:
                            storage.delete_object(orphan.key)
                    except Exception as error:  # one object that will not go must not stop the sweep
                        report.failed.append((orphan, str(error)))
        return report
