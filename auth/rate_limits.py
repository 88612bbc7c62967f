"""Rate limits: how often one client, and one account, may call an endpoint.

Counters live in Redis at REDIS_URL when it is set, so every app node shares them; in process
memory otherwise (one node, development). A refused request is a 429 in our error shape with a
Retry-After header (utils.errors turns flask-limiter's refusal into it).

Uploads are limited per account (UPLOAD_RATE_LIMIT), the API, POST /predict and the upload page together.

The sign-in family (log in, register, refresh, create a token, change the password, delete the
account) is limited twice: per client address (AUTH_RATE_LIMIT) and per account
(AUTH_ACCOUNT_RATE_LIMIT: the email a body names, or the authenticated user). The API and the
browser pages count in the same buckets (shared scopes), so an attacker gains nothing by switching
between them. Failed passwords (at sign-in, and the current one on a password change or an account
deletion) also slow the account down (managers.sign_in_backoff), which the rate limits do not replace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import Flask, current_app, g, request
from flask_limiter import Limiter

import services.memory_limits  # noqa: F401  (registers RATELIMIT_STORAGE_URI's "medsight-memory://" with limits)


def client_address() -> str:
    """The caller's address as the app sees it (ProxyFix applies TRUSTED_PROXIES before this)."""
    return request.remote_addr or "unknown"


def _submitted_email() -> str:
    """The email a sign-in or registration names, from a form or a JSON body; "" when there is none."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        email = request.form.get("email", "")
    else:
        try:
            body = request.get_json(silent=True, cache=True)
        except (RecursionError, ValueError):  # unreadable: the parser answers 400 invalid_json later
            body = None
        email = body.get("email", "") if isinstance(body, dict) else ""
    return email.strip().lower() if isinstance(email, str) else ""


def account_key() -> str:
    """Who a request acts for: the authenticated user, else the email it names (hashed), else its address."""
    user = g.get("medsight_user")
    if user is not None:
        return f"user:{user.id}"
    email = _submitted_email()
    if email:
        return "email:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"address:{client_address()}"


# Limits are declared per endpoint; nothing is limited by default. Configured from app.config
# (RATELIMIT_STORAGE_URI, RATELIMIT_HEADERS_ENABLED) when bound in create_app.
limiter = Limiter(key_func=client_address, default_limits=[])


def _succeeded(response) -> bool:
    return response.status_code < 400


def auth_rate_limited(scope: str, *, methods: list[str] | None = None, count_refusals: bool = True) -> Callable:
    """Limit a sign-in-family view per client address and per account; views sharing a scope share counters.

    count_refusals=False counts only requests that succeed (token creation: a malformed request costs
    nothing and gains nothing); sign-in and registration count every try, since failures are the guesses.
    On an endpoint that takes a login, put it below @auth_required, so the account is the caller.
    """
    deduct_when = None if count_refusals else _succeeded
    per_address = limiter.shared_limit(
        lambda: current_app.config["AUTH_RATE_LIMIT"],
        scope=f"{scope}:address",
        key_func=client_address,
        methods=methods,
        deduct_when=deduct_when,
    )
    per_account = limiter.shared_limit(
        lambda: current_app.config["AUTH_ACCOUNT_RATE_LIMIT"],
        scope=f"{scope}:account",
        key_func=account_key,
        methods=methods,
        deduct_when=deduct_when,
    )

    def decorator(view: Callable) -> Callable:
        return per_address(per_account(view))

    return decorator


def _anonymous() -> bool:
    return g.get("medsight_user") is None


def upload_rate_limited(view: Callable) -> Callable:
    """Limit uploads per account (UPLOAD_RATE_LIMIT); the API, POST /predict and the upload page share one bucket.

    Put it below @auth_required (or signed_in), so that the account is the caller and a refusal costs no
    upload's worth of reading. Anonymous classifications (POST /predict) have their own per-address limit.
    """
    return limiter.shared_limit(
        lambda: current_app.config["UPLOAD_RATE_LIMIT"],
        scope="upload:account",
        key_func=account_key,
        methods=["POST"],
        exempt_when=_anonymous,
    )(view)


def init_rate_limits(app: Flask) -> None:
    # flask-limiter puts Retry-After on every response of a limited endpoint; only a refusal means it.
    # Registered before the limiter's own hook, so it runs after it.
    @app.after_request
    def _retry_after_only_when_refused(response):
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        return response

    limiter.init_app(app)
