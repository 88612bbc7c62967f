"""Signing in and out: password checks, JWT pairs, the JWT blocklist, revoking what was presented, and
signing out every other session when the password changes."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError

from constants import EMAIL_MAX_LENGTH, AuditAction
from db import db
from managers.audit import AuditManager
from managers.sign_in_backoff import SignInBackoff
from managers.tokens import TokenManager
from managers.transactions import unit_of_work
from managers.users import UserManager, normalise_email, verify_password
from models import ApiToken, RevokedToken, User, utcnow
from utils.errors import Unauthorized, ValidationFailed

INVALID_CREDENTIALS = "The email or password is incorrect."
DISABLED_ACCOUNT = "This account is disabled; an administrator can enable it again."
# A typed "email" that reads as an address (the domain's labels and a top-level name of letters).
EMAIL_SHAPE = re.compile(r"[^@\s]+@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}")
# The JWT claim that carries the account's token generation (models.User.token_generation) when issued.
TOKEN_GENERATION_CLAIM = "token_generation"


@dataclass(frozen=True)
class AccessGrant:
    access_token: str
    expires_in: int  # seconds until the access token expires
    token_type: str = "Bearer"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires
    token_type: str = "Bearer"


class AuthManager:
    @staticmethod
    def login(email: str, password: str, *, session_csrf: str | None = None, tell_disabled: bool = False) -> TokenPair:
        """Check the credentials and issue an access + refresh JWT pair.

        Unknown email, wrong password and disabled account all give the same 401, in the same time;
        after repeated failures the account waits (managers.sign_in_backoff: 429 with Retry-After);
        tell_disabled (browser sign-in) says "account_disabled" instead, to whoever knows the password.
        session_csrf: one double-submit CSRF value for both tokens of a browser session, so a form
        signed with it stays valid when the access token is renewed from the refresh token.
        """
        # An account still waiting after failed sign-ins is refused before its password is even checked.
        SignInBackoff.check(email)
        user = UserManager.find_by_email(email)
        password_ok = verify_password(user, password)
        if not password_ok:
            SignInBackoff.failed(email)
        if not password_ok or not user.is_active:
            with unit_of_work():
                AuditManager.record(
                    AuditAction.LOGIN_FAILED,
                    actor=user if user is not None else None,
                    target_type="user",
                    target_id=user.id if user is not None else None,
                    # An account's own email is known by its id; deleting the account then forgets it.
                    details={} if user is not None else {"email": attempted_email(email)},
                )
            if password_ok and tell_disabled:
                raise Unauthorized(DISABLED_ACCOUNT, code="account_disabled")
            raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
        SignInBackoff.succeeded(email)
        with unit_of_work():
            AuditManager.record(AuditAction.LOGIN, actor=user, target_type="user", target_id=user.id)
        return AuthManager._token_pair(user, session_csrf)

    @staticmethod
    def change_password(
        user: User, current_password: str, new_password: str, *, session_csrf: str | None = None
    ) -> TokenPair:
        """Change user's password, sign out every session of the account, and sign this one in afresh.

        Every JWT issued before (access and refresh, API and browser, on any device) is refused from
        the next request on, so a stolen token or a session left open elsewhere ends with the old
        password; the returned pair keeps the caller signed in. Personal access tokens are kept: the
        user manages them one by one (as GitHub does on a password change). A wrong current password
        counts towards the sign-in back-off (UserManager.change_password).
        """
        UserManager.change_password(user, current_password, new_password)
        return AuthManager._token_pair(user, session_csrf)

    @staticmethod
    def refresh(user: User, *, session_csrf: str | None = None) -> AccessGrant:
        """A new access token for the holder of a valid refresh token (the refresh token stays the same)."""
        return AccessGrant(
            access_token=create_access_token(identity=str(user.id), additional_claims=_claims(user, session_csrf)),
            expires_in=_access_seconds(),
        )

    @staticmethod
    def _token_pair(user: User, session_csrf: str | None) -> TokenPair:
        """An access + refresh pair of user's current token generation (and the browser session's CSRF value)."""
        identity, claims = str(user.id), _claims(user, session_csrf)
        return TokenPair(
            access_token=create_access_token(identity=identity, additional_claims=claims),
            refresh_token=create_refresh_token(identity=identity, additional_claims=claims),
            expires_in=_access_seconds(),
        )

    @staticmethod
    def is_revoked(claims: dict) -> bool:
        """Whether a JWT is refused though signed and unexpired: logged out (in the blocklist), or issued
        before its account's last password change. A token of an account that is gone is left to the
        user lookup, which refuses it as account_disabled."""
        if AuthManager.is_jwt_revoked(claims["jti"]):
            return True
        user = UserManager.find(claims.get("sub", ""))
        # A JWT issued before generations existed carries none: it belongs to generation 0.
        return user is not None and claims.get(TOKEN_GENERATION_CLAIM, 0) != user.token_generation

    @staticmethod
    def is_jwt_revoked(jti: str) -> bool:
        """Whether this JWT was logged out (its jti is in the blocklist)."""
        return bool(db.session.scalar(select(exists().where(RevokedToken.jti == jti))))

    @staticmethod
    def logout(
        user: User,
        *,
        jwt_claims: dict | None = None,
        personal_token: ApiToken | None = None,
        refresh_token: str | None = None,
    ) -> None:
        """Revoke the credential the request was made with, and the given refresh token if any."""
        claims_to_revoke = [jwt_claims] if jwt_claims else []
        if refresh_token:
            claims_to_revoke.append(AuthManager._refresh_claims_of(user, refresh_token))
        revoked = [c for c in claims_to_revoke if c is not None]
        try:
            AuthManager._revoke(user, revoked, personal_token)
        except IntegrityError:
            # A concurrent logout revoked the same token first: the outcome is the one asked for.
            pass

    @staticmethod
    def _revoke(user: User, revoked: list[dict], personal_token: ApiToken | None) -> None:
        with unit_of_work():
            for claims in revoked:
                if not AuthManager.is_jwt_revoked(claims["jti"]):
                    db.session.add(
                        RevokedToken(
                            jti=claims["jti"],
                            token_type=claims.get("type", "access"),
                            user_id=user.id,
                            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                        )
                    )
            if personal_token is not None:
                TokenManager.revoke(user, personal_token.id)
            AuditManager.record(
                AuditAction.LOGOUT,
                actor=user,
                target_type="user",
                target_id=user.id,
                details={
                    "revoked": [c.get("type", "access") for c in revoked]
                    + (["personal_access_token"] if personal_token is not None else [])
                },
            )

    @staticmethod
    def _refresh_claims_of(user: User, refresh_token: str) -> dict | None:
        """The claims of user's refresh token; None if it already expired (nothing left to revoke)."""
        try:
            claims = decode_token(refresh_token, allow_expired=True)
        except PyJWTError:
            claims = None
        if claims is None or claims.get("type") != "refresh" or claims.get("sub") != str(user.id):
            raise ValidationFailed(details={"refresh_token": ["Not a valid refresh token for this account."]})
        if claims["exp"] <= utcnow().timestamp():
            return None
        return claims

    @staticmethod
    def prune_revocations() -> int:
        """Forget blocklist entries of tokens that have expired anyway; returns how many."""
        with unit_of_work():
            result = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= utcnow()))
        return result.rowcount or 0


def attempted_email(typed: str) -> str:
    """How the audit trail names what was typed as the email of a failed sign-in that matches no account.

    Passwords get typed into the email field and every admin reads the trail, so never as typed: an
    address is masked (j***@example.org), anything else is a keyed hash (unparsed:1a2b3c4d) that still
    tells one repeated attempt from another.
    """
    email = normalise_email(typed)[:EMAIL_MAX_LENGTH]
    if EMAIL_SHAPE.fullmatch(email):
        local, domain = email.rsplit("@", 1)
        return f"{local[0]}***@{domain}"
    key = current_app.config["JWT_SECRET_KEY"].encode()
    # Labelled, so this hash is never one the key is used for elsewhere.
    digest = hmac.new(key, b"failed-sign-in-email\0" + email.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"unparsed:{digest.hexdigest()[:8]}"


def _claims(user: User, session_csrf: str | None) -> dict:
    claims: dict = {TOKEN_GENERATION_CLAIM: user.token_generation}
    if session_csrf:
        claims["csrf"] = session_csrf
    return claims


def _access_seconds() -> int:
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
