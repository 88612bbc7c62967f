"""A clinician's verdict on a shared result: agree, disagree, or amend it with a finding of their own."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from constants import REVIEW_COMMENT_MAX_LENGTH, REVIEW_FINDING_MAX_LENGTH, ReviewVerdict
from db import db
from models.base import CreatedAtMixin, UUIDPrimaryKeyMixin


class PredictionReview(UUIDPrimaryKeyMixin, CreatedAtMixin, db.Model):
    __tablename__ = "prediction_reviews"
    __table_args__ = (
        CheckConstraint(f"verdict IN ({', '.join(repr(v.value) for v in ReviewVerdict)})", name="verdict_known"),
        Index("ix_prediction_reviews_prediction_id_created_at", "prediction_id", "created_at"),
        # Agreement per model version counts reviews by the version that made the prediction.
        Index("ix_prediction_reviews_modality_model_version", "modality", "model_version"),
    )

    prediction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False)
    # Kept when the clinician's account goes: the patient's result still says it was reviewed.
    clinician_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verdict: Mapped[str] = mapped_column(String(16), nullable=False)
    finding: Mapped[str | None] = mapped_column(String(REVIEW_FINDING_MAX_LENGTH))
    comment: Mapped[str | None] = mapped_column(String(REVIEW_COMMENT_MAX_LENGTH))
    # Copied from the prediction so agreement per model version is one grouped count.
    modality: Mapped[str] = mapped_column(String(32), nullable=False)
    model_version: Mapped[str] = mapped_column(String(32), nullable=False)

    @property
    def reviewed_at(self):
        return self.created_at

    def __repr__(self) -> str:
        return f"<PredictionReview {self.prediction_id} {self.verdict}>"
