"""Personal access tokens: made once and shown once, stored as a hash, listed, revoked, checked.

A token's lookup (its row and its account's) is kept for a few seconds per worker (services.token_cache):
the session events at the end of this module empty every worker's copy after any commit that changed
an account or a token, so a revocation, a disabled or deleted account or a password change counts on
the next request wherever it lands.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, inspect, or_, select, update
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

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
from services.token_cache import TokenCache
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


def _cache() -> TokenCache:
    return current_app.extensions["token_cache"]


def _columns(row: Any) -> dict[str, Any]:
    values = {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}
    return {key: list(value) if isinstance(value, list) else value for key, value in values.items()}


def _snapshot(token: ApiToken) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a cache entry keeps of a token's lookup: its row's and its account's column values."""
    return _columns(token), _columns(token.user)


def _attached(model: type, values: dict[str, Any]) -> Any:
    """A row rebuilt from cached column values, in the session as if just loaded (no query)."""
    row = model()
    for key, value in values.items():
        setattr(row, key, list(value) if isinstance(value, list) else value)
    make_transient_to_detached(row)
    loaded = db.session.identity_map.get(inspect(row).key)
    if loaded is not None:  # already read by this request: that copy is the one the session knows
        return loaded
    db.session.add(row)  # a detached row joins the session as persistent, with no query (unlike merge)
    return row


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
        digest, cache = _digest(secret), _cache()
        epoch = cache.epoch()  # before the database is read: a change committed meanwhile outdates what is read
        cached = cache.get(digest, epoch)
        if cached is not None:
            token_values, user_values = cached
            token = _attached(ApiToken, token_values)
            set_committed_value(token, "user", _attached(User, user_values))
        else:
            query = select(ApiToken).options(joinedload(ApiToken.user)).where(ApiToken.token_hash == digest)
            token = db.session.scalar(query)
        now = utcnow()
        if token is None:
            raise Unauthorized("The token is not valid.", code="token_invalid")
        if token.revoked_at is not None:
            raise Unauthorized("The token has been revoked.", code="token_revoked")
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthorized("The token has expired.", code="token_expired")
        if not token.user.is_active:
            raise Unauthorized("This account is disabled or no longer exists.", code="account_disabled")
        if cached is None:
            cached = _snapshot(token)
            cache.put(digest, cached, epoch)
        user = token.user
        if TokenManager._touch(token, now):
            cached[0]["last_used_at"] = now  # this worker's copy: touched again only after the resolution window
        return user, token

    @staticmethod
    def _touch(token: ApiToken, now: datetime) -> bool:
        """Record use, at most once per resolution window: one conditional UPDATE, no read-modify-write.
        Whether it was due (and so the row's last use is now within the window)."""
        stale_before = now - timedelta(seconds=PAT_LAST_USED_RESOLUTION_SECONDS)
        if token.last_used_at is not None and token.last_used_at > stale_before:
            return False
        token_id = token.id
        with unit_of_work():
            db.session.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id)
                .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale_before))
                .values(last_used_at=now)
                .execution_options(synchronize_session=False, **{_TOUCH: True})
            )
        set_committed_value(token, "last_used_at", now)
        return True


# -- the token cache's invalidation ------------------------------------------------------------------
# A commit that changed an account (any column: a cache entry holds the whole row) or a token (other than
# its last use) empties the cache everywhere: noted in the session as it flushes or runs a bulk UPDATE or
# DELETE, acted on once the commit has happened, forgotten on a rollback.

_STALE = "medsight_token_cache_stale"
_TOUCH = "medsight_token_touch"
_CACHED_TABLES = frozenset({User.__tablename__, ApiToken.__tablename__})


def _changed(row: Any) -> bool:
    state = inspect(row)
    return any(attr.history.has_changes() for attr in state.attrs if attr.key != "last_used_at")


@event.listens_for(Session, "before_flush")
def _note_changed_rows(session: Session, _context, _instances) -> None:
    for row in chain(session.dirty, session.deleted):
        if isinstance(row, User | ApiToken) and (row in session.deleted or _changed(row)):
            session.info[_STALE] = True
            return


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_changes(state) -> None:
    if (state.is_update or state.is_delete) and not state.execution_options.get(_TOUCH):
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _CACHED_TABLES:
            state.session.info[_STALE] = True


@event.listens_for(Session, "after_commit")
def _empty_token_cache(session: Session) -> None:
    if session.info.pop(_STALE, False) and has_app_context():
        cache = current_app.extensions.get("token_cache")
        if cache is not None:
            cache.invalidate()


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(_STALE, None)
