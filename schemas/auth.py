"""Accounts and sign-in: registration, login, refresh, logout, password change, the current user."""

from marshmallow import Schema, fields, pre_load, validate

from constants import EMAIL_MAX_LENGTH, FULL_NAME_MAX_LENGTH, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, Role
from schemas.fields import Email, Text


class RegisterSchema(Schema):
    email = Email(required=True, validate=validate.Length(max=EMAIL_MAX_LENGTH))
    password = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH),
        metadata={
            "description": f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters, letters mixed with digits or "
            "symbols, not the email, and not easy to guess (zxcvbn score 3 or more; else 422 with the reasons)"
        },
    )
    full_name = Text(load_default=None, allow_none=True, validate=validate.Length(max=FULL_NAME_MAX_LENGTH))

    @pre_load
    def _strip_email(self, data, **_kwargs):
        # Pasted addresses often carry spaces; case is normalised later, by the manager.
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            return {**data, "email": data["email"].strip()}
        return data


class LoginSchema(Schema):
    # Not validated as an email: a malformed one simply does not match, and answers like a wrong password.
    email = Text(required=True, validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH))
    password = Text(required=True, load_only=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH))


class PasswordChangeSchema(Schema):
    current_password = Text(required=True, load_only=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH))
    new_password = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH),
        metadata={
            "description": "The same rules as at registration (else 422 with the reasons in details.new_password)"
        },
    )


class NoBodySchema(Schema):
    """For endpoints that take no fields: any field sent is an error rather than silently ignored."""


class LogoutSchema(Schema):
    refresh_token = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=4096),
        metadata={"description": "Also revoke this refresh token (from the same login)"},
    )


class UserSchema(Schema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    full_name = fields.String(dump_only=True, allow_none=True)
    role = fields.String(dump_only=True, metadata={"enum": [r.value for r in Role]})
    is_active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class AccessTokenSchema(Schema):
    access_token = fields.String(dump_only=True)
    token_type = fields.String(dump_only=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(dump_only=True, metadata={"description": "Seconds until the access token expires"})


class TokenPairSchema(AccessTokenSchema):
    refresh_token = fields.String(dump_only=True)
