"""Links to one result for a doctor without an account: made, listed and revoked by the patient, opened by anyone
holding one until it expires. The token is random and only its sha256 is kept: the table opens nothing."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from constants import SHARE_LINK_DAYS_DEFAULT, SHARE_LINK_TOKEN_BYTES, AuditAction
from db import db
from managers.audit import AuditManager
from managers.predictions import ImageDownload, ImageKind, PredictionManager
from managers.transactions import unit_of_work
from models import AuditEvent, Prediction, ShareLink, User, utcnow
from utils.errors import LinkGone, NotFound


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewShareLink:
    """A link just made: the row, and its token, which is shown this once and never kept."""

    link: ShareLink
    token: str


@dataclass(frozen=True)
class ActiveShareLink:
    """A link the patient has out: the result it opens, and when it was opened (times only)."""

    link: ShareLink
    prediction: Prediction
    opens: int
    last_opened_at: datetime | None


class ShareLinkManager:
    @staticmethod
    def create(owner: User, prediction_id: uuid.UUID, expires_in_days: int = SHARE_LINK_DAYS_DEFAULT) -> NewShareLink:
        """A new link to one of owner's results, valid for expires_in_days (audited)."""
        prediction = PredictionManager.get_for(owner, prediction_id)
        token = secrets.token_urlsafe(SHARE_LINK_TOKEN_BYTES)
        link = ShareLink(
            id=uuid.uuid4(),
            prediction_id=prediction.id,
            owner_id=owner.id,
            token_hash=token_hash(token),
            expires_at=utcnow() + timedelta(days=expires_in_days),
        )
        with unit_of_work():
            db.session.add(link)
            AuditManager.record(
                AuditAction.SHARE_LINK_CREATE,
                actor=owner,
                target_type="share_link",
                target_id=link.id,
                details={"prediction_id": str(prediction.id), "expires_in_days": expires_in_days},
            )
        return NewShareLink(link, token)

    @staticmethod
    def revoke(owner: User, prediction_id: uuid.UUID, link_id: uuid.UUID) -> None:
        """End one of owner's links now; an unknown, someone else's or revoked one is NotFound."""
        link = db.session.get(ShareLink, link_id)
        if link is None or link.owner_id != owner.id or link.prediction_id != prediction_id or link.revoked_at:
            raise NotFound("No such link.")
        with unit_of_work():
            link.revoked_at = utcnow()
            AuditManager.record(
                AuditAction.SHARE_LINK_REVOKE,
                actor=owner,
                target_type="share_link",
                target_id=link.id,
                details={"prediction_id": str(link.prediction_id)},
            )

    @staticmethod
    def active_for(owner: User, prediction_id: uuid.UUID | None = None) -> list[ActiveShareLink]:
        """owner's links that still open (of one result, or all), newest first, with how often they were opened."""
        query = (
            select(ShareLink, Prediction)
            .join(Prediction, Prediction.id == ShareLink.prediction_id)
            .where(ShareLink.owner_id == owner.id, ShareLink.revoked_at.is_(None), ShareLink.expires_at > utcnow())
            .order_by(ShareLink.created_at.desc(), ShareLink.id)
        )
        if prediction_id is not None:
            query = query.where(ShareLink.prediction_id == prediction_id)
        rows = db.session.execute(query).all()
        opened = dict.fromkeys((str(link.id) for link, _ in rows), (0, None))
        if opened:
            opened.update(
                (target_id, (count, last))
                for target_id, count, last in db.session.execute(
                    select(AuditEvent.target_id, func.count(), func.max(AuditEvent.at))
                    .where(AuditEvent.action == AuditAction.SHARE_LINK_OPEN.value, AuditEvent.target_id.in_(opened))
                    .group_by(AuditEvent.target_id)
                )
            )
        return [ActiveShareLink(link, prediction, *opened[str(link.id)]) for link, prediction in rows]

    @staticmethod
    def open(token: str, what: str = "record", action: AuditAction = AuditAction.SHARE_LINK_OPEN) -> Prediction:
        """The result a link opens, for anyone holding it (audited: the time, never the address); LinkGone for an
        expired, revoked or unknown link alike, so an answer tells nothing about which links existed."""
        link = db.session.scalar(select(ShareLink).where(ShareLink.token_hash == token_hash(token)))
        if link is None or link.revoked_at is not None or link.expires_at <= utcnow():
            raise LinkGone()
        prediction = db.session.get(Prediction, link.prediction_id)
        with unit_of_work():
            AuditManager.record(
                action,
                target_type="share_link",
                target_id=link.id,
                details={"prediction_id": str(link.prediction_id), "what": what},
                record_ip=False,
            )
        return prediction

    @staticmethod
    def open_image(token: str, kind: ImageKind) -> ImageDownload:
        """The photo or heatmap of a linked result, as bytes (the page's images come from MedSight only)."""
        # Audited apart from opens: a page and its two images are one open to the patient, who sees the count.
        prediction = ShareLinkManager.open(token, kind, AuditAction.SHARE_LINK_IMAGE)
        return PredictionManager.download(prediction, kind, link=False)
