"""Idempotent uploads: the same Idempotency-Key from the same user within 24 hours gives back the first result.

A client that lost the answer to an upload (a timeout, a dropped connection) sends it again with the
same key and gets the prediction the first request made, instead of a second copy of the photo and
the record. The key is the client's name for one request: whatever the second request carries, the
first result is what it gets. Two requests racing with one key are settled by the database's unique
constraint: the loser's photo and record are undone, and it answers with the winner's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from db import db
from managers.predictions import PredictionManager
from managers.spots import SpotChoice
from managers.transactions import unit_of_work
from models import IdempotencyKey, Prediction, User, utcnow

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def _earlier(owner: User, key: str) -> Prediction | None:
    """The prediction this key made for owner within the window; a stale entry is forgotten."""
    entry = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == owner.id, IdempotencyKey.key == key)
    )
    if entry is None:
        return None
    if entry.created_at <= utcnow() - IDEMPOTENCY_WINDOW:
        with unit_of_work():
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == entry.id))
        return None
    return PredictionManager.get_for(owner, entry.prediction_id)


class IdempotentUploads:
    @staticmethod
    def create(
        owner: User,
        modality: str | None,
        upload: BinaryIO | bytes,
        note: str | None,
        key: str | None,
        spot: SpotChoice | None = None,
    ) -> tuple[Prediction, bool]:
        """PredictionManager.create, once per key: the prediction, and whether it is an earlier one replayed."""
        if key is None:
            return PredictionManager.create(owner, modality, upload, note, spot), False
        earlier = _earlier(owner, key)
        if earlier is not None:
            return earlier, True
        try:
            # One transaction: the record, its stored objects and the key land together or not at all.
            with unit_of_work():
                prediction = PredictionManager.create(owner, modality, upload, note, spot)
                db.session.flush()  # the prediction's row first: the key refers to it
                db.session.add(IdempotencyKey(user_id=owner.id, key=key, prediction_id=prediction.id))
        except IntegrityError:
            winner = _earlier(owner, key)
            if winner is None:
                raise
            return winner, True
        return prediction, False
