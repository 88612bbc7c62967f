"""Personal access tokens: what a client asks for, and what it sees (the secret only once)."""

from marshmallow import Schema, fields, pre_dump, validate

from constants import PAT_MAX_LIFETIME_DAYS, PAT_NAME_MAX_LENGTH, TokenScope
from schemas.fields import Text

_SCOPES = [s.value for s in TokenScope]


class TokenCreateSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=PAT_NAME_MAX_LENGTH))
    scopes = fields.List(
        Text(validate=validate.OneOf(_SCOPES)),
        load_default=None,
        validate=validate.Length(min=1),
        metadata={"description": f"Subset of {_SCOPES}; all of them when left out"},
    )
    expires_in_days = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=PAT_MAX_LIFETIME_DAYS),
        metadata={"description": "Lifetime in days; the token never expires when left out"},
    )


class TokenSchema(Schema):
    id = fields.UUID(dump_only=True)
    name = fields.String(dump_only=True)
    prefix = fields.String(dump_only=True, metadata={"description": "The token's public start, to tell tokens apart"})
    scopes = fields.List(fields.String(), dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
    expires_at = fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)


class TokenCreatedSchema(TokenSchema):
    token = fields.String(dump_only=True, metadata={"description": "The secret. Shown this once; store it now."})

    @pre_dump
    def _from_issued_token(self, issued, **_kwargs):
        """Dump a managers.tokens.IssuedToken: the row's fields plus the one-time secret."""
        row = issued.token
        return {**{name: getattr(row, name) for name in TokenSchema._declared_fields}, "token": issued.secret}


class TokenListSchema(Schema):
    items = fields.List(fields.Nested(TokenSchema), dump_only=True)
    total = fields.Integer(dump_only=True)
