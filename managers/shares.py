"""A patient shares one of their results, or every result of one of their spots, with a clinician, and revokes
a share; revoking hides the result from them at once.

Sharing a spot shares the results it has then, each by a share of its own (revoked one by one, as any): a
photo added to the spot later is not shared until the spot, or that result, is shared again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from constants import AuditAction, Role
from db import db
from managers.audit import AuditManager
from managers.predictions import PredictionManager
from managers.spots import SpotManager
from managers.transactions import unit_of_work
from models import Prediction, PredictionShare, Spot, User, utcnow
from utils.errors import NotAClinician, NotFound


def _active_clinician(email: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or user.role != Role.CLINICIAN.value:
        return None
    return user


def _clinician_for(email: str) -> User:
    """The active clinician of that email. An address that is no clinician's (no account, a patient's, an
    admin's, a disabled one) is refused with one answer, so the refusal tells nothing about which accounts exist."""
    clinician = _active_clinician(email)
    if clinician is None:
        raise NotAClinician()
    return clinician


def _shares_of(
    owner: User, predictions: list[Prediction], clinician: User, spot: Spot | None = None
) -> list[PredictionShare]:
    """The active shares of these results of owner's with clinician, in their order: those already shared kept,
    the others made and audited in one unit of work (clinicians loaded)."""
    ids = [prediction.id for prediction in predictions]
    active = select(PredictionShare).where(
        PredictionShare.prediction_id.in_(ids),
        PredictionShare.clinician_id == clinician.id,
        PredictionShare.revoked_at.is_(None),
    )
    shared = {share.prediction_id for share in db.session.scalars(active)} if ids else set()
    with unit_of_work():
        for prediction_id in ids:
            if prediction_id in shared:
                continue
            share = PredictionShare(id=uuid.uuid4(), prediction_id=prediction_id, clinician_id=clinician.id)
            db.session.add(share)
            details = {"share_id": str(share.id), "clinician_id": str(clinician.id)}
            if spot is not None:
                details["spot_id"] = str(spot.id)
            AuditManager.record(
                AuditAction.SHARE_CREATE,
                actor=owner,
                target_type="prediction",
                target_id=prediction_id,
                details=details,
            )
    if not ids:
        return []
    order = {prediction_id: place for place, prediction_id in enumerate(ids)}
    rows = db.session.scalars(active.options(joinedload(PredictionShare.clinician))).all()
    return sorted(rows, key=lambda share: order[share.prediction_id])


@dataclass(frozen=True)
class SpotShare:
    """A spot shared with a clinician: the shares of its results then, oldest result first."""

    spot: Spot
    clinician: User
    shares: list[PredictionShare]


class ShareManager:
    @staticmethod
    def share(owner: User, prediction_id: uuid.UUID, clinician_email: str) -> PredictionShare:
        """Share one of owner's results with the clinician of that email; sharing it again gives the same share."""
        prediction = PredictionManager.get_for(owner, prediction_id)
        return _shares_of(owner, [prediction], _clinician_for(clinician_email))[0]

    @staticmethod
    def share_spot(owner: User, spot_id: uuid.UUID, clinician_email: str) -> SpotShare:
        """Share every result one of owner's spots has now with the clinician of that email, each as share() does
        (one already shared keeps its share); later photos of the spot are not shared by this."""
        timeline = SpotManager.timeline(owner, spot_id)
        clinician = _clinician_for(clinician_email)
        return SpotShare(timeline.spot, clinician, _shares_of(owner, timeline.predictions, clinician, timeline.spot))

    @staticmethod
    def revoke(owner: User, prediction_id: uuid.UUID, share_id: uuid.UUID) -> None:
        """Stop sharing one of owner's results with a clinician; an unknown or revoked share is NotFound."""
        prediction = PredictionManager.get_for(owner, prediction_id)
        share = db.session.get(PredictionShare, share_id)
        if share is None or share.prediction_id != prediction.id or share.revoked_at is not None:
            raise NotFound("No such share.")
        with unit_of_work():
            share.revoked_at = utcnow()
            AuditManager.record(
                AuditAction.SHARE_REVOKE,
                actor=owner,
                target_type="prediction",
                target_id=prediction.id,
                details={"share_id": str(share.id), "clinician_id": str(share.clinician_id)},
            )

    @staticmethod
    def active_for(owner: User, prediction_id: uuid.UUID) -> list[PredictionShare]:
        """The clinicians one of owner's results is shared with now, first shared first (clinicians loaded)."""
        prediction = PredictionManager.get_for(owner, prediction_id)
        return list(
            db.session.scalars(
                select(PredictionShare)
                .options(joinedload(PredictionShare.clinician))
                .where(PredictionShare.prediction_id == prediction.id, PredictionShare.revoked_at.is_(None))
                .order_by(PredictionShare.created_at)
            )
        )
