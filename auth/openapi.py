"""How guarded API operations are described in the OpenAPI document: the bearer scheme and its errors."""

BEARER_SECURITY = [{"bearerAuth": []}]
BEARER_SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A JWT access token from /api/v1/auth/login, or a personal access token (msk_...).",
}
# Documented on every guarded operation; "Error" is schemas.errors.ErrorSchema's component name.
AUTH_ERROR_RESPONSES = {
    "401": {
        "description": "Missing, invalid, expired or revoked token, or a disabled account",
        "content": {"application/json": {"schema": "Error"}},
    },
    "403": {
        "description": (
            "The account's role or the token's scopes do not allow this, "
            "or the operation needs a login rather than a personal token"
        ),
        "content": {"application/json": {"schema": "Error"}},
    },
}
