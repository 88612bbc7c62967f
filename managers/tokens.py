"""Personal access tokens: made once and shown once, stored as a hash, listed, revoked, checked."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from constants import (
    PAT_LAST_USED_RESOLUTION_SECONDS,
    PAT_MARKER,
    PAT_PREFIX_BYTES,
    PAT_SECRET_BYTES,
    AuditAction,
    TokenScope,
)
from db import db
from managers.audit import AuditManager
from managers.ownership import get_owned
from managers.transactions import unit_of_work
from models import ApiToken, User, utcnow
from utils.errors import Unauthorized


@dataclass(frozen=True)
class IssuedToken:
    """A token as just created: the row, and the secret the caller sees this once and never again."""

    token: ApiToken
    secret: str


def looks_like_personal_token(bearer: str) -> bool:
    return bearer.startswith(PAT_MARKER + "_")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TokenManager:
    @staticmethod
    def create(
        user: User, name: str, scopes: list[str] | None = None, expires_in_days: int | None = None
    ) -> IssuedToken:
        """Make a token for user; the returned secret is the only time it exists in clear."""
        prefix = f"{PAT_MARKER}_{secrets.token_hex(PAT_PREFIX_BYTES)}"
        secret = f"{prefix}_{secrets.token_urlsafe(PAT_SECRET_BYTES)}"
        chosen = [TokenScope(s).value for s in scopes] if scopes else [s.value for s in TokenScope]
        token = ApiToken(
            user_id=user.id,
            name=name.strip(),
            prefix=prefix,
            token_hash=_digest(secret),
            scopes=sorted(set(chosen)),
            expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        with unit_of_work():
            db.session.add(token)
            db.session.flush()
            AuditManager.record(
                AuditAction.TOKEN_CREATE,
                actor=user,
                target_type="api_token",
                target_id=token.id,
                details={"name": token.name, "scopes": token.scopes},
            )
        return IssuedToken(token=token, secret=secret)

    @staticmethod
    def list_for(user: User) -> list[ApiToken]:
        """The user's tokens, newest first, revoked ones included (they show revoked_at)."""
        query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
        return list(db.session.scalars(query))

    @staticmethod
    def get_for(user: User, token_id: uuid.UUID) -> ApiToken:
        """One of user's tokens; NotFound for an unknown id or someone else's token alike."""
        return get_owned(ApiToken.user_id, token_id, user, noun="token")

    @staticmethod
    def revoke(user: User, token_id: uuid.UUID) -> ApiToken:
        """Revoke one of user's tokens; revoking an already revoked token changes nothing."""
        token = TokenManager.get_for(user, token_id)
        if token.revoked_at is None:
            with unit_of_work():
                token.revoked_at = utcnow()
                AuditManager.record(AuditAction.TOKEN_REVOKE, actor=user, target_type="api_token", target_id=token.id)
        return token

    @staticmethod
    def authenticate(secret: str) -> tuple[User, ApiToken]:
        """The active user a token secret belongs to; Unauthorized if it is unknown, revoked or expired."""
        token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
        now = utcnow()
        if token is None:
            raise Unauthorized("The token is not valid.", code="token_invalid")
        if token.revoked_at is not None:
            raise Unauthorized("The token has been revoked.", code="token_revoked")
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthorized("The token has expired.", code="token_expired")
        if not token.user.is_active:
            raise Unauthorized("This account is disabled or no longer exists.", code="account_disabled")
        TokenManager._touch(token, now)
        return token.user, token

    @staticmethod
    def _touch(token: ApiToken, now: datetime) -> None:
        """Record use, at most once per resolution window: one conditional UPDATE, no read-modify-write."""
        stale_before = now - timedelta(seconds=PAT_LAST_USED_RESOLUTION_SECONDS)
        if token.last_used_at is not None and token.last_used_at > stale_before:
            return
        with unit_of_work():
            db.session.execute(
                update(ApiToken)
                .where(ApiToken.id == token.id)
                .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale_before))
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
        token.last_used_at = now
