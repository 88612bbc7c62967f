"""An account: a patient or an admin who signs in with email and password."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from constants import EMAIL_MAX_LENGTH, FULL_NAME_MAX_LENGTH, Role
from db import db
from models.base import TimestampMixin, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from models.api_token import ApiToken


class User(UUIDPrimaryKeyMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r.value) for r in Role)})", name="role_known"),
        # Emails are stored normalised to lower case, so a plain unique constraint is case-insensitive.
        CheckConstraint("email = lower(email)", name="email_lower_case"),
    )

    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default=Role.PATIENT.value)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())
    full_name: Mapped[str | None] = mapped_column(String(FULL_NAME_MAX_LENGTH))
    # Carried by every JWT issued to the account; raised on a password change, which so refuses every
    # JWT issued before it (an exact counter: a token's issue time has only whole seconds).
    token_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    api_tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}{'' if self.is_active else ' disabled'}>"
