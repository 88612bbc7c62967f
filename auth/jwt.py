"""flask-jwt-extended's callbacks: a revoked JWT (logged out, or issued before a password change) is refused,
and its account must still exist and be active."""

from __future__ import annotations

from flask_jwt_extended import JWTManager

from managers.auth import AuthManager
from managers.users import UserManager
from models import User


def configure_jwt(jwt: JWTManager) -> None:
    """Teach flask-jwt-extended our revocations and that a token's account must still be active."""

    @jwt.token_in_blocklist_loader
    def _is_revoked(_header: dict, payload: dict) -> bool:
        return AuthManager.is_revoked(payload)

    @jwt.user_lookup_loader
    def _load_user(_header: dict, payload: dict) -> User | None:
        return UserManager.find_active(payload["sub"])
