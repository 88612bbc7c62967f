"""One result a patient shares with a clinician, until the patient revokes it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db import db
from models.base import CreatedAtMixin, UTCDateTime, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from models.prediction import Prediction
    from models.user import User


class PredictionShare(UUIDPrimaryKeyMixin, CreatedAtMixin, db.Model):
    __tablename__ = "prediction_shares"
    __table_args__ = (
        # The clinician's queue: their active shares; and "is this one shared with me" by the pair.
        Index("ix_prediction_shares_clinician_id_prediction_id", "clinician_id", "prediction_id"),
        Index("ix_prediction_shares_prediction_id", "prediction_id"),
    )

    prediction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False)
    clinician_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    # Kept, not deleted, when revoked: the trail says what was shared when; a revoked share shows nothing.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    prediction: Mapped[Prediction] = relationship(lazy="raise")
    clinician: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"<PredictionShare {self.prediction_id} -> {self.clinician_id}{' revoked' if self.revoked_at else ''}>"
