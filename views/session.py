"""Browser sessions: the JWT pair in HttpOnly cookies, double-submit CSRF, quiet renewal, and the page guard.

A browser signs in once and then holds an access and a refresh JWT in HttpOnly, SameSite=Strict
cookies (flask-jwt-extended's cookie mode; the names and flags are in config.py), each kept by the
browser as long as its token is valid (the refresh cookie 30 days), across restarts. Both tokens of
one sign-in carry the same CSRF value, which every state-changing form sends back in its hidden
``csrf_token`` field: so a form stays valid when the access token is renewed from the refresh
token, which happens here, before the page's guard runs, whenever the access cookie has expired.
The sign-in and registration forms, sent before there is a session, are protected by a cookie of
their own with the same double-submit rule.

Pages read the JWT from the cookies only (auth_required(locations=("cookies",))); the API reads
the Authorization header only, so a cookie never authorizes an API call.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, current_app, g, redirect, request, url_for
from flask_jwt_extended import (
    decode_token,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
)
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException
from jwt import PyJWTError
from werkzeug.http import dump_cookie

from auth import auth_required, current_credential, current_user
from constants import Role
from managers.auth import AuthManager, TokenPair
from managers.users import UserManager
from models import User
from utils.errors import AppError

COOKIES = ("cookies",)
FORM_CSRF_COOKIE = "medsight_form_csrf"
CSRF_FIELD = "csrf_token"


class CsrfRefused(AppError):
    """A form without the right CSRF value: refused before anything is read or changed."""

    status, code = 400, "csrf_failed"
    message = "This form has expired or did not come from MedSight. Go back, reload the page and send it again."


def page_blueprint(name: str, import_name: str, **kwargs: Any) -> Blueprint:
    """A blueprint of browser pages: its requests renew an expired access cookie first."""
    blueprint = Blueprint(name, import_name, **kwargs)
    blueprint.before_request(renew_expired_access)
    blueprint.after_request(set_session_cookies)
    return blueprint


def new_session_csrf() -> str:
    """The CSRF value shared by both tokens of a new browser session."""
    return secrets.token_urlsafe(24)


def _lifetime(setting: str) -> int:
    return int(current_app.config[setting].total_seconds())


# Cookies with a Max-Age as long as their token lives: without one they would be session cookies,
# and the 30-day sign-in would end whenever the browser closes.
def _set_access_cookie(response: Response, access_token: str) -> None:
    set_access_cookies(response, access_token, max_age=_lifetime("JWT_ACCESS_TOKEN_EXPIRES"))


def start_session(response: Response, tokens: TokenPair) -> Response:
    # A quiet renewal earlier in this request must not overwrite the new session's access cookie.
    g.pop("renewed_access_token", None)
    _set_access_cookie(response, tokens.access_token)
    set_refresh_cookies(response, tokens.refresh_token, max_age=_lifetime("JWT_REFRESH_TOKEN_EXPIRES"))
    return response


def end_session(response: Response) -> Response:
    g.pop("renewed_access_token", None)
    unset_jwt_cookies(response)
    return response


def refresh_cookie() -> str | None:
    return request.cookies.get(current_app.config["JWT_REFRESH_COOKIE_NAME"])


# -- quiet renewal ------------------------------------------------------------------------------


def _decodes(token: str | None) -> dict | None:
    if not token:
        return None
    try:
        return decode_token(token)
    except (PyJWTError, JWTExtendedException):
        return None


def _replace_request_cookie(name: str, value: str) -> None:
    """Let the rest of this request see value as cookie name (the browser gets it with the response)."""
    cookies = {**request.cookies.to_dict(), name: value}
    request.environ["HTTP_COOKIE"] = "; ".join(dump_cookie(k, v).split(";", 1)[0] for k, v in cookies.items())
    request.__dict__.pop("cookies", None)  # werkzeug caches the parsed cookies on the request


def renew_expired_access() -> None:
    """An expired (or missing) access cookie beside a valid refresh cookie: mint a new access token.

    The refresh token must be unrevoked (not logged out, not from before a password change) and its
    account active, as for POST /api/v1/auth/refresh.
    """
    config = current_app.config
    if _decodes(request.cookies.get(config["JWT_ACCESS_COOKIE_NAME"])) is not None:
        return
    claims = _decodes(refresh_cookie())
    if claims is None or claims.get("type") != "refresh" or AuthManager.is_revoked(claims):
        return
    user = UserManager.find_active(claims["sub"])
    if user is None:
        return
    access_token = AuthManager.refresh(user, session_csrf=claims.get("csrf")).access_token
    g.renewed_access_token = access_token
    _replace_request_cookie(config["JWT_ACCESS_COOKIE_NAME"], access_token)


def set_session_cookies(response: Response) -> Response:
    """after_request: hand a renewed access token, and a new sign-in form CSRF value, to the browser."""
    renewed = g.pop("renewed_access_token", None)
    if renewed is not None:
        _set_access_cookie(response, renewed)
    form_csrf = g.pop("new_form_csrf", None)
    if form_csrf is not None:
        response.set_cookie(
            FORM_CSRF_COOKIE,
            form_csrf,
            httponly=True,
            samesite=current_app.config["JWT_COOKIE_SAMESITE"],
            secure=current_app.config["JWT_COOKIE_SECURE"],
        )
    return response


# -- the guard ----------------------------------------------------------------------------------


# C0 and C1 control characters and DEL: browsers drop tabs and newlines from a URL (so "/\t/evil" is
# "//evil", another host), and a newline in a Location header is a 500.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# What may stay unescaped in the rebuilt path and query; anything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def safe_next(target: str | None) -> str | None:
    """A path of this app to return to after signing in, rebuilt from its parts; None for anything else."""
    if not target or target.startswith("//") or _CONTROL_CHARACTERS.search(target) or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    path = quote(parts.path, safe=_PATH_SAFE)
    return f"{path}?{quote(parts.query, safe=_QUERY_SAFE)}" if parts.query else path


def sign_in_url() -> str:
    return url_for(
        "web_account.login", next=safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
    )


def signed_in(role: Role | None = None) -> Callable:
    """Guard a page: a signed-in browser (and the role, if given); else off to the sign-in page.

    A form sent without the session's CSRF value is refused with a 400 page, and nothing changes.
    """

    def decorator(view: Callable) -> Callable:
        guarded = auth_required(role, locations=COOKIES, personal_tokens=False)(view)

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return guarded(*args, **kwargs)
            except CSRFError as exc:
                raise CsrfRefused() from exc
            except (JWTExtendedException, PyJWTError):
                return redirect(sign_in_url())

        return wrapper

    return decorator


def _session_claims() -> dict | None:
    """The claims of the browser's access cookie if it is a valid, unrevoked access token (no CSRF check:
    only for showing who is signed in, never for authorizing anything)."""
    claims = _decodes(request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"]))
    if claims is None or claims.get("type") != "access" or AuthManager.is_revoked(claims):
        return None
    return claims


def visitor() -> User | None:
    """Who is signed in on this page, if anyone (public pages and error pages show the signed-in navigation too)."""
    try:
        return current_user()
    except RuntimeError:
        pass
    if "web_visitor" not in g:
        claims = _session_claims()
        g.web_visitor = UserManager.find_active(claims["sub"]) if claims else None
        g.web_visitor_csrf = claims.get("csrf", "") if claims else ""
    return g.web_visitor


def csrf_token() -> str:
    """The value a state-changing form sends back: the session's, or the sign-in forms' own."""
    try:
        return current_credential().jwt_claims.get("csrf", "")
    except RuntimeError:
        pass
    if visitor() is not None:
        return g.web_visitor_csrf
    return form_csrf_token()


# -- CSRF for the forms sent before there is a session (sign in, create account) ----------------


def form_csrf_token() -> str:
    token = request.cookies.get(FORM_CSRF_COOKIE) or g.get("new_form_csrf")
    if not token:
        token = g.new_form_csrf = secrets.token_urlsafe(24)
    return token


def check_form_csrf() -> None:
    """Refuse a sign-in or registration form whose CSRF field does not match its cookie."""
    cookie = request.cookies.get(FORM_CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CsrfRefused()
