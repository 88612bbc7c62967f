"""How many predictions each user has and the bytes they take in storage: kept by the database itself (triggers,
migrations 0009 and 0018), read by the history and the storage quota.

Counting a user's rows for every page of their history walks the whole index range: tens of
milliseconds at a few hundred thousand rows. Triggers on predictions keep this tally in the same
statement as every insert and delete, whoever issues it (the app, a bulk load, a cascade), so it is
exact whenever a transaction can see it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from db import db


class PredictionCount(db.Model):
    __tablename__ = "prediction_counts"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The sum of the predictions' stored_bytes (migration 0018): what the storage quota is checked against.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    def __repr__(self) -> str:
        return f"<PredictionCount {self.owner_id}: {self.predictions}>"
