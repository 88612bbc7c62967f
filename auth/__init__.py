"""Request authentication, shared by every HTTP layer (the JSON API in resources/, browser pages in views/).

It sits between those layers and managers/: it reads the request (Authorization header or
cookies), asks the managers whether the token and its account are good, and keeps the caller for
the view. Managers never import it; only HTTP layers (and app.py, which binds the JWT callbacks) do.

    from auth import auth_required, current_user

    @auth_required()                              # bearer JWT or personal access token
    @auth_required(Role.ADMIN)                    # and the admin role
    @auth_required(locations=("cookies",))        # a JWT in flask-jwt-extended's cookies (browser pages)

- auth.guard: auth_required, current_user, current_credential, Credential.
- auth.jwt: configure_jwt, the blocklist and user-lookup callbacks bound in create_app.
- auth.rate_limits: the limiter (flask-limiter; counters in Redis at REDIS_URL, shared by every node).
- auth.openapi: the bearer security scheme and the 401/403 responses in the OpenAPI document.
"""

from auth.guard import Credential, auth_required, current_credential, current_user, current_user_or_none
from auth.jwt import configure_jwt
from auth.rate_limits import auth_rate_limited, init_rate_limits, limiter, upload_rate_limited

__all__ = [
    "Credential",
    "auth_rate_limited",
    "auth_required",
    "configure_jwt",
    "current_credential",
    "current_user",
    "current_user_or_none",
    "init_rate_limits",
    "limiter",
    "upload_rate_limited",
]
