"""A patient shares one of their results with a clinician, and revokes it; revoking hides it from them at once."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from constants import AuditAction, Role
from db import db
from managers.audit import AuditManager
from managers.predictions import PredictionManager
from managers.transactions import unit_of_work
from models import PredictionShare, User, utcnow
from utils.errors import NotAClinician, NotFound


def _active_clinician(email: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or user.role != Role.CLINICIAN.value:
        return None
    return user


class ShareManager:
    @staticmethod
    def share(owner: User, prediction_id: uuid.UUID, clinician_email: str) -> PredictionShare:
        """Share one of owner's results with the clinician of that email; sharing it again gives the same share.

        An address that is no clinician's (no account, a patient's, an admin's, a disabled one) is refused
        with one answer, so the refusal tells nothing about which accounts exist.
        """
        prediction = PredictionManager.get_for(owner, prediction_id)
        clinician = _active_clinician(clinician_email)
        if clinician is None:
            raise NotAClinician()
        existing = db.session.scalar(
            select(PredictionShare)
            .options(joinedload(PredictionShare.clinician))
            .where(
                PredictionShare.prediction_id == prediction.id,
                PredictionShare.clinician_id == clinician.id,
                PredictionShare.revoked_at.is_(None),
            )
        )
        if existing is not None:
            return existing
        share = PredictionShare(id=uuid.uuid4(), prediction_id=prediction.id, clinician_id=clinician.id)
        with unit_of_work():
            db.session.add(share)
            AuditManager.record(
                AuditAction.SHARE_CREATE,
                actor=owner,
                target_type="prediction",
                target_id=prediction.id,
                details={"share_id": str(share.id), "clinician_id": str(clinician.id)},
            )
        return db.session.scalar(
            select(PredictionShare).options(joinedload(PredictionShare.clinician)).where(PredictionShare.id == share.id)
        )

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
