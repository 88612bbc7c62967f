"""Who did what to which record, from where and when: an append-only trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.base import UTCDateTime, UUIDPrimaryKeyMixin, utcnow


class AuditEvent(UUIDPrimaryKeyMixin, db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_id_at", "actor_id", "at"),
        Index("ix_audit_events_target", "target_type", "target_id"),
    )

    # Kept when the actor's account is deleted: the trail must outlive the account.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)

    def __repr__(self) -> str:
        return f"<AuditEvent {self.action} by {self.actor_id} on {self.target_type}:{self.target_id}>"
