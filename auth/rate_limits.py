"""Rate limits: how often one client may call an endpoint, counted per client address.

Counters live in Redis at REDIS_URL when it is set, so every app node shares them; in process
memory otherwise (one node, development). A refused request is a 429 in our error shape with a
Retry-After header (utils.errors turns flask-limiter's refusal into it).
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter


def client_address() -> str:
    """The caller's address as the app sees it (ProxyFix applies TRUSTED_PROXIES before this)."""
    return request.remote_addr or "unknown"


# Limits are declared per endpoint; nothing is limited by default. Configured from app.config
# (RATELIMIT_STORAGE_URI, RATELIMIT_HEADERS_ENABLED) when bound in create_app.
limiter = Limiter(key_func=client_address, default_limits=[])


def init_rate_limits(app: Flask) -> None:
    limiter.init_app(app)
