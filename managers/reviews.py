"""Clinicians' side of the care loop: the queue of results shared with them, opening one, recording a verdict,
and how often clinicians agreed with each model version (for admins)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from cnn_model.conformal import UNCERTAIN
from cnn_model.modalities import MODALITIES, get_spec
from constants import PAGE_SIZE_MAX, AuditAction, ReviewVerdict
from db import db
from managers.audit import AuditManager
from managers.predictions import ImageDownload, ImageKind, PredictionManager
from managers.transactions import unit_of_work
from models import Prediction, PredictionReview, PredictionShare, User
from utils.errors import NotFound, ValidationFailed


@dataclass(frozen=True)
class QueueItem:
    """One result shared with the clinician, and whether they have reviewed it."""

    prediction: Prediction
    shared_at: datetime
    reviewed_at: datetime | None


@dataclass(frozen=True)
class VersionAgreement:
    """How clinicians judged the results of one model version."""

    model_version: str
    reviews: int
    agree: int
    disagree: int
    amend: int

    @property
    def agreement(self) -> float:
        return self.agree / self.reviews if self.reviews else 0.0


def _shared_with(clinician: User, prediction_id: uuid.UUID) -> Prediction:
    """The prediction, if it is shared with clinician now; else NotFound, as for one that does not exist."""
    prediction = db.session.scalar(
        select(Prediction)
        .join(PredictionShare, PredictionShare.prediction_id == Prediction.id)
        .where(
            Prediction.id == prediction_id,
            PredictionShare.clinician_id == clinician.id,
            PredictionShare.revoked_at.is_(None),
        )
        .limit(1)
    )
    if prediction is None:
        raise NotFound("No such prediction.")
    return prediction


def _audit_open(clinician: User, prediction: Prediction, what: str) -> None:
    with unit_of_work():
        AuditManager.record(
            AuditAction.REVIEW_OPEN,
            actor=clinician,
            target_type="prediction",
            target_id=prediction.id,
            details={"owner_id": str(prediction.owner_id), "what": what},
        )


class ReviewManager:
    @staticmethod
    def queue(clinician: User) -> list[QueueItem]:
        """What is shared with clinician now: not yet reviewed first, then flagged, then uncertain; oldest first."""
        mine = (
            select(PredictionReview.prediction_id, func.max(PredictionReview.created_at).label("reviewed_at"))
            .where(PredictionReview.clinician_id == clinician.id)
            .group_by(PredictionReview.prediction_id)
            .subquery()
        )
        shared = (
            select(PredictionShare.prediction_id, func.min(PredictionShare.created_at).label("shared_at"))
            .where(PredictionShare.clinician_id == clinician.id, PredictionShare.revoked_at.is_(None))
            .group_by(PredictionShare.prediction_id)
            .subquery()
        )
        rows = db.session.execute(
            select(Prediction, shared.c.shared_at, mine.c.reviewed_at)
            .join(shared, shared.c.prediction_id == Prediction.id)
            .outerjoin(mine, mine.c.prediction_id == Prediction.id)
            .order_by(
                case((mine.c.reviewed_at.is_(None), 0), else_=1),
                case((Prediction.is_positive.is_(True), 0), else_=1),
                case((Prediction.certainty == UNCERTAIN, 0), else_=1),
                Prediction.created_at,
                Prediction.id,
            )
            .limit(PAGE_SIZE_MAX)
        ).all()
        return [QueueItem(prediction, shared_at, reviewed_at) for prediction, shared_at, reviewed_at in rows]

    @staticmethod
    def open(clinician: User, prediction_id: uuid.UUID) -> Prediction:
        """A result shared with clinician, to review (audited); NotFound if it is not shared with them now."""
        prediction = _shared_with(clinician, prediction_id)
        _audit_open(clinician, prediction, "record")
        return prediction

    @staticmethod
    def open_image(clinician: User, prediction_id: uuid.UUID, kind: ImageKind, *, link: bool = True) -> ImageDownload:
        """The photo or heatmap of a result shared with clinician (audited as open)."""
        prediction = _shared_with(clinician, prediction_id)
        _audit_open(clinician, prediction, kind)
        return PredictionManager.download(prediction, kind, link=link)

    @staticmethod
    def record(
        clinician: User, prediction_id: uuid.UUID, verdict: str, finding: str | None, comment: str | None
    ) -> PredictionReview:
        """A clinician's verdict on a result shared with them (audited); the patient's result shows the latest.

        agree: the finding is the model's (or names one of the classes it could not rule out); disagree: the
        finding, if given, names the class the clinician reads instead; amend: the finding is required, free text.
        """
        prediction = _shared_with(clinician, prediction_id)
        spec = get_spec(prediction.modality)
        finding = (finding or "").strip() or None
        comment = (comment or "").strip() or None
        verdict = ReviewVerdict(verdict)
        if verdict == ReviewVerdict.AGREE:
            finding = finding or prediction.label
        if verdict == ReviewVerdict.AMEND and finding is None:
            raise ValidationFailed(details={"finding": ["Say what the finding is instead."]})
        if verdict != ReviewVerdict.AMEND and finding is not None and finding not in spec.class_names:
            raise ValidationFailed(
                details={"finding": [f"Name one of: {', '.join(spec.class_names)}; or amend with free text."]}
            )
        review = PredictionReview(
            id=uuid.uuid4(),
            prediction_id=prediction.id,
            clinician_id=clinician.id,
            verdict=verdict.value,
            finding=finding,
            comment=comment,
            modality=prediction.modality,
            model_version=prediction.model_version,
        )
        with unit_of_work():
            db.session.add(review)
            AuditManager.record(
                AuditAction.REVIEW_CREATE,
                actor=clinician,
                target_type="prediction",
                target_id=prediction.id,
                details={"owner_id": str(prediction.owner_id), "review_id": str(review.id), "verdict": verdict.value},
            )
        return review

    @staticmethod
    def agreement(modality: str) -> list[VersionAgreement]:
        """How often clinicians agreed with each version of a modality's model, newest version first by name."""
        if modality not in MODALITIES:
            raise NotFound("No such model.")
        counts = db.session.execute(
            select(PredictionReview.model_version, PredictionReview.verdict, func.count())
            .where(PredictionReview.modality == modality)
            .group_by(PredictionReview.model_version, PredictionReview.verdict)
        ).all()
        by_version: dict[str, dict[str, int]] = {}
        for version, verdict, count in counts:
            by_version.setdefault(version, {})[verdict] = count
        return [
            VersionAgreement(
                model_version=version,
                reviews=sum(tally.values()),
                agree=tally.get(ReviewVerdict.AGREE.value, 0),
                disagree=tally.get(ReviewVerdict.DISAGREE.value, 0),
                amend=tally.get(ReviewVerdict.AMEND.value, 0),
            )
            for version, tally in sorted(by_version.items(), reverse=True)
        ]
