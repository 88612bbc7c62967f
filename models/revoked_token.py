"""The JWT blocklist: tokens revoked before they expire (logout), looked up on every request."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.base import UTCDateTime, UUIDPrimaryKeyMixin, utcnow


class RevokedToken(UUIDPrimaryKeyMixin, db.Model):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    token_type: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Past this moment the token is refused anyway, so the row can be pruned.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
