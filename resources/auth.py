"""/api/v1/auth: register, log in, refresh, log out, change the password, and who am I."""

from flask.views import MethodView

from auth import auth_rate_limited, auth_required, current_credential, current_user
from constants import TokenScope
from managers.auth import AuthManager
from managers.users import UserManager
from resources.api import Blueprint
from schemas.auth import (
    AccessTokenSchema,
    LoginSchema,
    LogoutSchema,
    NoBodySchema,
    PasswordChangeSchema,
    RegisterSchema,
    TokenPairSchema,
    UserSchema,
)

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and sign-in")


@blp.route("/register")
class Register(MethodView):
    @auth_rate_limited("register")
    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="The email is already registered (code email_taken)")
    @blp.alt_response(429, description="Too many registrations from this address or for this email")
    def post(self, body):
        """Open a patient account."""
        return UserManager.register(body["email"], body["password"], body["full_name"])


@blp.route("/login")
class Login(MethodView):
    @auth_rate_limited("sign_in")
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="Wrong email or password, or a disabled account (code invalid_credentials)")
    @blp.alt_response(
        429, description="Too many sign-ins from this address or for this account, or failed ones: see Retry-After"
    )
    def post(self, body):
        """Exchange email and password for an access and a refresh token."""
        return AuthManager.login(body["email"], body["password"])


@blp.route("/refresh")
class Refresh(MethodView):
    @auth_required(jwt_type="refresh")
    @auth_rate_limited("refresh", count_refusals=False)
    @blp.arguments(NoBodySchema, required=False)
    @blp.response(200, AccessTokenSchema)
    @blp.alt_response(429, description="Too many refreshes from this address or for this account")
    def post(self, _body):
        """Get a new access token with the refresh token (sent as the bearer token)."""
        return AuthManager.refresh(current_user())


@blp.route("/logout")
class Logout(MethodView):
    # Revoking itself is the one write a read-only personal token may do.
    @auth_required(jwt_type="any", scope=TokenScope.READ)
    @blp.arguments(LogoutSchema, required=False)
    @blp.response(204)
    def post(self, body):
        """Revoke the bearer token (access, refresh or personal), and the refresh token given in the body."""
        credential = current_credential()
        AuthManager.logout(
            current_user(),
            jwt_claims=credential.jwt_claims,
            personal_token=credential.personal_token,
            refresh_token=body.get("refresh_token"),
        )


@blp.route("/password")
class PasswordChange(MethodView):
    @auth_required(personal_tokens=False)
    @auth_rate_limited("password_change")
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(
        422, description="Wrong current password (details.current_password) or a weak new one (details.new_password)"
    )
    @blp.alt_response(
        429,
        description="Too many changes for this account or from this address, or wrong current passwords "
        "(counted with failed sign-ins): see Retry-After",
    )
    def post(self, body):
        """Change the password (takes a login). Every token issued before stops working, on every device and in
        every browser; the answer is a fresh pair for this client. Personal access tokens are kept."""
        return AuthManager.change_password(current_user(), body["current_password"], body["new_password"])


@blp.route("/me")
class Me(MethodView):
    @auth_required()
    @blp.response(200, UserSchema)
    def get(self):
        """The account the token belongs to."""
        return current_user()
