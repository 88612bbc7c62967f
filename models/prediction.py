"""One classified image in a user's history: what the model said, which model said it, where the photo is."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from cnn_model.modalities import MODALITIES
from constants import PREDICTION_NOTE_MAX_LENGTH
from db import db
from models.base import CreatedAtMixin, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from models.user import User

STORAGE_KEY_LENGTH = 255


class Prediction(UUIDPrimaryKeyMixin, CreatedAtMixin, db.Model):
    __tablename__ = "predictions"
    __table_args__ = (
        # A user's history, newest first, is the hot query; admins page through everyone's by time.
        Index("ix_predictions_owner_id_created_at", "owner_id", "created_at"),
        # The history's filters: its count is an index-only range scan (owner + modality [+ is_positive])
        # instead of a scan of the table, and a filtered page is read in order. Also owner + is_positive.
        Index(
            "ix_predictions_owner_id_modality_is_positive_created_at",
            "owner_id",
            "modality",
            "is_positive",
            "created_at",
        ),
        Index("ix_predictions_created_at", "created_at"),
        # The history's certainty filter (owner + certainty, newest first).
        Index("ix_predictions_owner_id_certainty_created_at", "owner_id", "certainty", "created_at"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_is_probability"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    modality: Mapped[str] = mapped_column(String(32), nullable=False)
    # True where the modality gate chose the modality because the client named none.
    modality_detected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    label: Mapped[str] = mapped_column(String(64), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON, nullable=False)
    # Malignant or abnormal, by the modality's spec (its positive_flag).
    is_positive: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # The findings the model could not rule out at set_coverage (cnn_model.conformal), most probable first,
    # and "clear" (one) or "uncertain" (more). Empty for rows from before migration 0014.
    prediction_set: Mapped[list[str] | None] = mapped_column(JSON)
    set_coverage: Mapped[float | None] = mapped_column(Float)
    certainty: Mapped[str | None] = mapped_column(String(16))

    model_name: Mapped[str] = mapped_column(String(100), nullable=False)
    model_version: Mapped[str] = mapped_column(String(32), nullable=False)
    model_sha256: Mapped[str] = mapped_column(String(64), nullable=False)

    image_key: Mapped[str] = mapped_column(String(STORAGE_KEY_LENGTH), nullable=False)
    image_content_type: Mapped[str] = mapped_column(String(64), nullable=False)
    image_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    image_width: Mapped[int] = mapped_column(Integer, nullable=False)
    image_height: Mapped[int] = mapped_column(Integer, nullable=False)
    heatmap_key: Mapped[str | None] = mapped_column(String(STORAGE_KEY_LENGTH))
    # A DICOM upload: the file itself, its identifying attributes removed (the photo is its PNG preview).
    original_key: Mapped[str | None] = mapped_column(String(STORAGE_KEY_LENGTH))
    # The predicted class's activation map (cnn_model.runtime.ActivationMap, a few dozen bytes) while the
    # heatmap at heatmap_key is not rendered yet: the first request for it renders it and clears this.
    activation_map: Mapped[bytes | None] = mapped_column(LargeBinary)

    note: Mapped[str | None] = mapped_column(String(PREDICTION_NOTE_MAX_LENGTH))

    # lazy="raise": lists must say how they load owners (one JOIN), never one query per row.
    owner: Mapped[User] = relationship(lazy="raise")

    @validates("modality")
    def _known_modality(self, _key: str, modality: str) -> str:
        # The registry, not a database check, says which modalities exist (migration 0004).
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}")
        return modality

    def __repr__(self) -> str:
        return f"<Prediction {self.id} {self.modality}:{self.label} owner={self.owner_id}>"
