"""A link to one result for a doctor without an account: only a hash of its token is kept."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.base import CreatedAtMixin, UTCDateTime, UUIDPrimaryKeyMixin


class ShareLink(UUIDPrimaryKeyMixin, CreatedAtMixin, db.Model):
    __tablename__ = "share_links"
    __table_args__ = (Index("ix_share_links_owner_id_expires_at", "owner_id", "expires_at"),)

    prediction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    # sha256 of the token in the URL: a copy of the table opens nothing.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ShareLink {self.id} for {self.prediction_id}>"
