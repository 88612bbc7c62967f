"""/api/v1/tokens: personal access tokens for API clients."""

import uuid

from flask.views import MethodView

from auth import auth_rate_limited, auth_required, current_user
from managers.tokens import TokenManager
from resources.api import Blueprint
from schemas.tokens import TokenCreatedSchema, TokenCreateSchema, TokenListSchema

blp = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens", description="Personal access tokens")


@blp.route("")
class Tokens(MethodView):
    @auth_required()
    @blp.response(200, TokenListSchema)
    def get(self):
        """The caller's tokens, newest first, without their secrets."""
        tokens = TokenManager.list_for(current_user())
        return {"items": tokens, "total": len(tokens)}

    @auth_required(personal_tokens=False)
    @auth_rate_limited("token_create", count_refusals=False)
    @blp.arguments(TokenCreateSchema)
    @blp.response(201, TokenCreatedSchema)
    @blp.alt_response(429, description="Too many tokens created from this address or for this account")
    def post(self, body):
        """Create a token (with a login, not a personal token). Its secret is shown once; only a hash is kept."""
        return TokenManager.create(current_user(), body["name"], body["scopes"], body["expires_in_days"])


@blp.route("/<uuid:token_id>")
class Token(MethodView):
    @auth_required(personal_tokens=False)
    @blp.response(204)
    @blp.alt_response(404, description="No such token among the caller's")
    def delete(self, token_id: uuid.UUID):
        """Revoke a token (with a login; a personal token revokes itself by logging out), from the next request."""
        TokenManager.revoke(current_user(), token_id)
