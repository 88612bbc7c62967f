"""The audit trail: every security-relevant action becomes an AuditEvent in the same transaction."""

from __future__ import annotations

import uuid
from contextvars import ContextVar, Token
from datetime import datetime
from typing import Any

from sqlalchemy import select

from constants import AuditAction
from db import db
from models import AuditEvent, User

# Set by the HTTP layer for each request (see create_app) so that use cases need not pass it along.
_client_ip: ContextVar[str | None] = ContextVar("medsight_client_ip", default=None)


def set_client_ip(ip: str | None) -> Token:
    """Record where the current request comes from; returns a token for reset_client_ip."""
    return _client_ip.set(ip)


def reset_client_ip(token: Token) -> None:
    _client_ip.reset(token)


class AuditManager:
    @staticmethod
    def record(
        action: AuditAction | str,
        *,
        actor: User | None = None,
        target_type: str | None = None,
        target_id: uuid.UUID | str | None = None,
        details: dict[str, Any] | None = None,
        record_ip: bool = True,
    ) -> AuditEvent:
        """Add an audit event to the current session; the caller's unit of work commits it.

        record_ip=False: an event the person it is about will read (an opened share link), where the
        address would tell them who opened it."""
        event = AuditEvent(
            actor_id=actor.id if actor is not None else None,
            action=str(action),
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            ip=_client_ip.get() if record_ip else None,
            details=dict(details or {}),
        )
        db.session.add(event)
        return event

    @staticmethod
    def recorded_since(action: AuditAction | str, *, actor: User, target_id: uuid.UUID | str, since: datetime) -> bool:
        """Whether actor already has this action on this target in the trail at or after since."""
        found = select(AuditEvent.id).where(
            AuditEvent.action == str(action),
            AuditEvent.actor_id == actor.id,
            AuditEvent.target_id == str(target_id),
            AuditEvent.at >= since,
        )
        return db.session.scalar(found.limit(1)) is not None
