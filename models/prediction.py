"""One classified image in a user's history: what the model said, which model said it, where the photo is."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from cnn_model.modalities import MODALITIES, get_spec
from constants import PREDICTION_NOTE_MAX_LENGTH
from db import db
from models.base import CreatedAtMixin, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from models.prediction_review import PredictionReview
    from models.spot import Spot
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
        Index("uq_predictions_job_id_job_entry_sha256", "job_id", "job_entry_sha256", unique=True),
        # A spot's photos in time order.
        Index("ix_predictions_spot_id_created_at", "spot_id", "created_at"),
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
    # What the photo and the original take in storage, counted against the owner's quota (0 for uploads made
    # before it was kept, migration 0011).
    stored_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")

    note: Mapped[str | None] = mapped_column(String(PREDICTION_NOTE_MAX_LENGTH))

    # A prediction made by a batch job: the job, and the sha256 of the archive entry it read. The pair is
    # unique, so a chunk delivered twice (a worker lost mid-chunk) never writes a second row for an entry.
    # No foreign key: a job goes only with its owner, whose predictions go too, and SQLite cannot drop a
    # column that has one (migration 0013's downgrade).
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    job_entry_sha256: Mapped[str | None] = mapped_column(String(64))

    # The spot this photo is of, if its owner named one; a spot deleted leaves its photos, unlinked
    # (SpotManager.delete). No foreign key, as job_id: SQLite cannot drop a column that has one.
    spot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # A skin photo of a spot: its lesion embedding (cnn_model.lesion_match, half-precision numbers); its
    # distance then to the nearest of the spot's earlier photos, and whether that was beyond the threshold of
    # one lesion's photos (None for the first photo, or where there is no embedding to compare).
    lesion_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    lesion_distance: Mapped[float | None] = mapped_column(Float)
    looks_like_other_lesion: Mapped[bool | None] = mapped_column(Boolean)

    # lazy="raise": lists must say how they load owners (one JOIN), never one query per row.
    owner: Mapped[User] = relationship(lazy="raise")
    # joined: a prediction is shown with its spot's name, in lists too, without a query per row.
    spot: Mapped[Spot | None] = relationship(
        lazy="joined", primaryjoin="foreign(Prediction.spot_id) == Spot.id", viewonly=True
    )
    # Clinicians' verdicts, newest first; selectin: a list of predictions loads them all in one query.
    reviews: Mapped[list[PredictionReview]] = relationship(
        lazy="selectin",
        order_by="PredictionReview.created_at.desc()",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @validates("modality")
    def _known_modality(self, _key: str, modality: str) -> str:
        # The registry, not a database check, says which modalities exist (migration 0004).
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}")
        return modality

    @property
    def positive_probability(self) -> float:
        """Summed probability of the modality's malignant/abnormal classes: derived from probabilities, not stored."""
        positives = get_spec(self.modality).positive_classes
        return sum(self.probabilities.get(name, 0.0) for name in positives)

    @property
    def review(self) -> PredictionReview | None:
        """The latest clinician's verdict on this result, if any."""
        return self.reviews[0] if self.reviews else None

    def facts(self) -> dict[str, Any]:
        """What was found, by which model, in which image: the part of a prediction that the API's answer and the
        account export both give, as plain values (each adds its own: names and links, files and card figures)."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "modality": self.modality,
            "modality_detected": self.modality_detected,
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
            "is_positive": self.is_positive,
            "positive_probability": self.positive_probability,
            "prediction_set": list(self.prediction_set) if self.prediction_set is not None else None,
            "set_coverage": self.set_coverage,
            "certainty": self.certainty,
            "note": self.note,
            "job_id": self.job_id,
            "model": {"name": self.model_name, "version": self.model_version, "sha256": self.model_sha256},
            "image": {
                "content_type": self.image_content_type,
                "sha256": self.image_sha256,
                "width": self.image_width,
                "height": self.image_height,
            },
        }

    def __repr__(self) -> str:
        return f"<Prediction {self.id} {self.modality}:{self.label} owner={self.owner_id}>"
