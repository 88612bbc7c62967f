"""Whether an account may keep one more upload: it must still be open, and stay within its storage quota.

The quota counts the bytes an account's photos and DICOM originals take in storage (each prediction's
stored_bytes, summed by the database in the account's tally); heatmaps are drawn by us and not
counted. An upload is checked twice: before the model runs and anything is stored (a full account is
answered at once, for nothing), and again in the transaction that writes its record, holding the
account's row, so that uploads racing each other cannot all fit into the same last megabytes and none
can be recorded for an account being deleted.
"""

from __future__ import annotations

import uuid

from flask import current_app
from sqlalchemy import select

from db import db
from managers.transactions import hold_write_lock, identity_of
from models import PredictionCount, User
from utils.errors import AccountDisabled, StorageQuotaExceeded

_MB = 1024 * 1024


def _megabytes(size: int) -> str:
    return f"{size / _MB:.1f} MB"


def _stored_bytes(owner_id: uuid.UUID) -> int:
    """The account's tally (models.PredictionCount), kept by the database with each insert and delete: one row
    read, however long the history."""
    used = db.session.scalar(select(PredictionCount.stored_bytes).where(PredictionCount.owner_id == owner_id))
    return used or 0


class UploadQuota:
    @staticmethod
    def check(owner: User, upload_bytes: int) -> None:
        """StorageQuotaExceeded (413) if keeping upload_bytes more would take owner past the storage quota."""
        quota = current_app.config["STORAGE_QUOTA_BYTES"]
        if not quota:
            return
        used = _stored_bytes(identity_of(owner))
        if used + upload_bytes > quota:
            raise StorageQuotaExceeded(
                f"This upload ({_megabytes(upload_bytes)}) would take your account past its storage quota of "
                f"{_megabytes(quota)} ({_megabytes(used)} used). Delete results you no longer need (export your "
                "data first to keep a copy) to free space.",
                details={"quota_bytes": quota, "used_bytes": used, "upload_bytes": upload_bytes},
            )

    @staticmethod
    def admit(owner: User, upload_bytes: int) -> None:
        """In the transaction that records an upload: hold owner's row until it commits, and check again.

        AccountDisabled (401) if the account was disabled or deleted since the request began: an account
        being deleted is disabled first, and its deletion waits for this row (or this for it).
        """
        hold_write_lock()
        held = select(User).where(User.id == identity_of(owner)).with_for_update(key_share=True)
        row = db.session.scalar(held.execution_options(populate_existing=True))
        if row is None or not row.is_active:
            raise AccountDisabled()
        UploadQuota.check(owner, upload_bytes)
