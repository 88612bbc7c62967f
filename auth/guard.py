"""The decorator that guards a view, and who the guarded request's caller is.

    @blp.route("/things")
    class Things(MethodView):
        @auth_required()                    # any active user; role=Role.ADMIN for admins only
        @blp.arguments(ThingQuerySchema, location="query")
        @blp.response(200, ThingSchema(many=True))
        def get(self, query):
            return ThingManager.list_for(current_user(), query)

auth_required goes above the other decorators: who is calling is settled before the body or the
query is read, so an anonymous request is a 401 whatever it sends (and an upload is not read).

A personal access token (``msk_...``) in the Authorization header is looked up by its hash;
anything else must be a valid, unrevoked JWT, read from where ``locations`` says (the
Authorization header by default; ``locations=("cookies",)`` for browser pages). Either way the
account must be active on this very request. Roles are checked by the same decorator (403
``forbidden``); personal access tokens are also held to their scopes (read for GET/HEAD/OPTIONS,
write for the rest, unless the endpoint names one), and refused where the endpoint takes a login
only (personal_tokens=False: 403 ``login_required``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal

from flask import current_app, g, request
from flask_jwt_extended import get_current_user, get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint

from auth.openapi import AUTH_ERROR_RESPONSES, BEARER_SECURITY
from constants import Role, TokenScope
from managers.tokens import TokenManager, looks_like_personal_token
from models import ApiToken, User
from utils.errors import Forbidden

JwtType = Literal["access", "refresh", "any"]
TokenLocation = Literal["headers", "cookies"]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ALL_SCOPES = frozenset(s.value for s in TokenScope)


@dataclass(frozen=True)
class Credential:
    """What the current request authenticated with."""

    kind: Literal["jwt", "personal_access_token"]
    scopes: frozenset[str] = field(default_factory=lambda: _ALL_SCOPES)
    jwt_claims: dict[str, Any] | None = None
    personal_token: ApiToken | None = None


def _bearer_value() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _authenticate(jwt_type: JwtType, locations: tuple[TokenLocation, ...]) -> tuple[User, Credential]:
    bearer = _bearer_value() if "headers" in locations else None
    if bearer is not None and jwt_type != "refresh" and looks_like_personal_token(bearer):
        user, token = TokenManager.authenticate(bearer)
        return user, Credential("personal_access_token", frozenset(token.scopes), personal_token=token)
    # Raises flask-jwt-extended's errors (missing, expired, invalid, revoked, account gone),
    # which utils.errors turns into 401s in our shape.
    verify_jwt_in_request(refresh=jwt_type == "refresh", verify_type=jwt_type != "any", locations=list(locations))
    return get_current_user(), Credential("jwt", jwt_claims=get_jwt())


def auth_required(
    role: Role | str | Iterable[Role | str] | None = None,
    *,
    scope: TokenScope | str | None = None,
    jwt_type: JwtType = "access",
    personal_tokens: bool = True,
    locations: Iterable[TokenLocation] = ("headers",),
    anonymous: Callable[[], bool] | None = None,
) -> Callable:
    """Require an authenticated, active user (and one of the roles, if given) for a view.

    jwt_type: which JWT the endpoint takes — "access" (the default), "refresh" (only a refresh
    token, no personal access token), or "any" (logout accepts whatever the client holds).
    personal_tokens: False for endpoints that need a login (a JWT): a personal access token gets
    403 ``login_required``, so a token cannot mint or revoke tokens and so widen its own reach.
    locations: where the JWT is read — the Authorization header (the API), flask-jwt-extended's
    cookies (browser pages; its CSRF check applies to unsafe methods), or both. Personal access
    tokens are only ever read from the header.
    anonymous: where given and it answers True, a request that sends no Authorization header at all
    runs the view with no user (current_user_or_none() is None); one that sends a token is checked
    as usual. For deployments that let the original apps' clients classify without an account.
    """
    if role is None:
        roles: frozenset[str] = frozenset()
    elif isinstance(role, str):
        roles = frozenset({Role(role).value})
    else:
        roles = frozenset(Role(r).value for r in role)
    required_scope = TokenScope(scope).value if scope is not None else None
    token_locations = tuple(locations)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if anonymous is not None and "Authorization" not in request.headers and anonymous():
                g.medsight_user = g.medsight_credential = None
                return current_app.ensure_sync(view)(*args, **kwargs)
            user, credential = _authenticate(jwt_type, token_locations)
            if roles and user.role not in roles:
                raise Forbidden("Your role does not allow this.", code="forbidden")
            if not personal_tokens and credential.kind == "personal_access_token":
                raise Forbidden("Log in to do this; personal access tokens cannot.", code="login_required")
            needed = required_scope or (
                TokenScope.READ.value if request.method in _SAFE_METHODS else TokenScope.WRITE.value
            )
            if needed not in credential.scopes:
                raise Forbidden(f"This token lacks the {needed!r} scope.", code="insufficient_scope")
            g.medsight_user = user
            g.medsight_credential = credential
            return current_app.ensure_sync(view)(*args, **kwargs)

        wrapper.medsight_auth_required = True  # resources.api.Blueprint.arguments refuses to wrap it
        return Blueprint.doc(security=BEARER_SECURITY, responses=AUTH_ERROR_RESPONSES)(wrapper)

    return decorator


def current_user() -> User:
    """The user of the current request; only inside a view guarded by auth_required."""
    user = g.get("medsight_user")
    if user is None:
        raise RuntimeError("current_user() called outside a view guarded by @auth_required")
    return user


def current_user_or_none() -> User | None:
    """The user of the current request, or None in a view that let an anonymous request through."""
    if "medsight_user" not in g:
        raise RuntimeError("current_user_or_none() called outside a view guarded by @auth_required")
    return g.medsight_user


def current_credential() -> Credential:
    """How the current request authenticated (JWT claims or the personal access token row)."""
    credential = g.get("medsight_credential")
    if credential is None:
        raise RuntimeError("current_credential() called outside a view guarded by @auth_required")
    return credential
