"""One spot an account follows over time (a mole on the left shoulder): its name, where it is, what kind of image."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from constants import SPOT_NAME_MAX_LENGTH
from db import db
from models.base import CreatedAtMixin, UUIDPrimaryKeyMixin


def spot_name_key(name: str) -> str:
    """What makes two names one spot's: case and runs of spaces do not count ("Mole,  left" is "mole, left")."""
    return " ".join(name.split()).casefold()


class Spot(UUIDPrimaryKeyMixin, CreatedAtMixin, db.Model):
    __tablename__ = "spots"
    __table_args__ = (
        # One spot per name per account: an upload naming it again adds to it.
        Index("uq_spots_owner_id_name_key", "owner_id", "name_key", unique=True),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(SPOT_NAME_MAX_LENGTH), nullable=False)
    name_key: Mapped[str] = mapped_column(String(SPOT_NAME_MAX_LENGTH), nullable=False)
    body_site: Mapped[str | None] = mapped_column(String(32))
    # The kind of image its first photo was: a spot follows one thing, so every photo of it is of this kind.
    modality: Mapped[str] = mapped_column(String(32), nullable=False)

    def rename(self, name: str) -> None:
        self.name = " ".join(name.split())
        self.name_key = spot_name_key(name)

    def __repr__(self) -> str:
        return f"<Spot {self.id} {self.name!r} owner={self.owner_id}>"
