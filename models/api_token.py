"""A personal access token: a long-lived, scoped, revocable bearer secret of which only a hash is kept."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from constants import PAT_NAME_MAX_LENGTH
from db import db
from models.base import CreatedAtMixin, UTCDateTime, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from models.user import User


class ApiToken(UUIDPrimaryKeyMixin, CreatedAtMixin, db.Model):
    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(PAT_NAME_MAX_LENGTH), nullable=False)
    # Shown in lists so people can tell their tokens apart ("msk_1a2b3c4d"); not a secret.
    prefix: Mapped[str] = mapped_column(String(32), nullable=False)
    # sha256 of the whole token: the secret is high-entropy, so a fast hash cannot be brute-forced.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="api_tokens")

    def __repr__(self) -> str:
        return f"<ApiToken {self.prefix} {self.name!r}>"
