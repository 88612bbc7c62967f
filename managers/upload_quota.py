"""Whether an account may keep one more upload: it must still be open, and stay within its storage quota.

The quota counts the bytes an account's photos and DICOM originals take in storage (each prediction's
stored_bytes, summed by the database in the account's tally); heatmaps are drawn by us and not
counted. An upload is checked twice: before the model runs and anything is stored (a full account is
answered at once, for nothing), and again in the transaction that writes its record, holding the
account's row, so that uploads racing each other cannot all fit into the same last megabytes and none
can be recorded for an account being deleted.

The early check of a single upload (UploadQuota.precheck) reads the tally only when it has to: each process
remembers what each account used when admit last checked one of its uploads (KnownUsage), and an upload that
fits beside that figure goes on without the read (one statement fewer per upload: 0.8–1.0 ms on PostgreSQL).
The figure is only ever a hint: the decision is admit's, on the tally read with the account's row held.
Another process's uploads since can make the hint too low: then one upload that no longer fits costs a model
run and a put (removed again) before admit refuses it, and the refusal corrects the hint, so the next is
refused early again. Deletions make it too high, and then the tally is read.
"""

from __future__ import annotations

import threading
import uuid

from flask import current_app
from sqlalchemy import select

from db import db
from managers.transactions import hold_write_lock, identity_of
from models import PredictionCount, User
from utils.errors import AccountDisabled, StorageQuotaExceeded

_MB = 1024 * 1024
# Accounts a process remembers the usage of; past this many it forgets them all and starts again.
KNOWN_USAGE_MAX_ACCOUNTS = 10_000


def _readable_size(size: int) -> str:
    """A size as people read it: a photo of 40 KB is "40 KB", not "0.0 MB"."""
    kilobytes = round(size / 1024)
    if kilobytes < 1024:
        return f"{max(kilobytes, 1 if size else 0)} KB"
    return f"{size / _MB:.1f} MB"


def _stored_bytes(owner_id: uuid.UUID) -> int:
    """The account's tally (models.PredictionCount), kept by the database with each insert and delete: one row
    read, however long the history."""
    used = db.session.scalar(select(PredictionCount.stored_bytes).where(PredictionCount.owner_id == owner_id))
    return used or 0


class KnownUsage:
    """The bytes each account uses as this process's admit last read them, with its row held (precheck's hint)."""

    def __init__(self, max_accounts: int = KNOWN_USAGE_MAX_ACCOUNTS) -> None:
        self._max_accounts = max_accounts
        self._used: dict[uuid.UUID, int] = {}
        self._lock = threading.Lock()

    def get(self, owner_id: uuid.UUID) -> int | None:
        return self._used.get(owner_id)

    def remember(self, owner_id: uuid.UUID, used: int) -> None:
        with self._lock:
            if len(self._used) >= self._max_accounts and owner_id not in self._used:
                self._used.clear()
            self._used[owner_id] = used


def _known_usage() -> KnownUsage:
    return current_app.extensions["known_usage"]


def _refuse_past_quota(quota: int, used: int, upload_bytes: int) -> None:
    if used + upload_bytes > quota:
        raise StorageQuotaExceeded(
            f"This upload ({_readable_size(upload_bytes)}) would take your account past its storage quota of "
            f"{_readable_size(quota)} ({_readable_size(used)} used). Delete results you no longer need (export your "
            "data first to keep a copy) to free space.",
            details={"quota_bytes": quota, "used_bytes": used, "upload_bytes": upload_bytes},
        )


class UploadQuota:
    @staticmethod
    def check(owner: User, upload_bytes: int) -> None:
        """StorageQuotaExceeded (413) if keeping upload_bytes more would take owner past the storage quota."""
        quota = current_app.config["STORAGE_QUOTA_BYTES"]
        if quota:
            _refuse_past_quota(quota, _stored_bytes(identity_of(owner)), upload_bytes)

    @staticmethod
    def precheck(owner: User, upload_bytes: int) -> None:
        """check, before the model and storage spend anything on an upload, without reading the tally where the
        usage this process's admit last read for the account leaves room (module docstring)."""
        quota = current_app.config["STORAGE_QUOTA_BYTES"]
        if not quota:
            return
        known = _known_usage().get(identity_of(owner))
        if known is None or known + upload_bytes > quota:
            UploadQuota.check(owner, upload_bytes)

    @staticmethod
    def admit(owner: User, upload_bytes: int) -> None:
        """In the transaction that records an upload: hold owner's row until it commits, and check again.

        AccountDisabled (401) if the account was disabled or deleted since the request began: an account
        being deleted is disabled first, and its deletion waits for this row (or this for it).
        """
        hold_write_lock()
        owner_id = identity_of(owner)
        held = select(User).where(User.id == owner_id).with_for_update(key_share=True)
        row = db.session.scalar(held.execution_options(populate_existing=True))
        if row is None or not row.is_active:
            raise AccountDisabled()
        quota = current_app.config["STORAGE_QUOTA_BYTES"]
        if not quota:
            return
        used = _stored_bytes(owner_id)
        fits = used + upload_bytes <= quota
        # The hint for this process's next precheck, read with the row held: what the account will use once this
        # commits, or, refused, what it uses now (so the next upload that cannot fit is refused before the
        # model again). If the commit fails, the hint is too high by this upload: at worst a precheck reads.
        _known_usage().remember(owner_id, used + upload_bytes if fits else used)
        _refuse_past_quota(quota, used, upload_bytes)
