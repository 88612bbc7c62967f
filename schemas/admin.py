"""Administration: user list and changes, the audit log."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from constants import EMAIL_MAX_LENGTH, Role
from schemas.auth import UserSchema
from schemas.fields import StrictBoolean, Text, UtcDateTime
from schemas.pagination import PageQuerySchema, PageSchema

_ROLES = [r.value for r in Role]


class UserQuerySchema(PageQuerySchema):
    role = Text(validate=validate.OneOf(_ROLES), metadata={"enum": _ROLES})
    is_active = fields.Boolean()
    email = Text(validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH), metadata={"description": "Part of the address"})


class UserListSchema(PageSchema):
    items = fields.List(fields.Nested(UserSchema), dump_only=True)


class UserUpdateSchema(Schema):
    role = Text(validate=validate.OneOf(_ROLES), metadata={"enum": _ROLES})
    is_active = StrictBoolean(metadata={"description": "false disables the account at once"})

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("Give role and/or is_active.", field_name="_schema")


class AuditQuerySchema(PageQuerySchema):
    actor_id = fields.UUID()
    action = Text(validate=validate.Length(min=1, max=64), metadata={"example": "prediction.read"})
    target_type = Text(validate=validate.Length(min=1, max=32), metadata={"example": "prediction"})
    target_id = Text(validate=validate.Length(min=1, max=64))
    after = UtcDateTime(metadata={"description": "ISO 8601; UTC if no offset"})
    before = UtcDateTime(metadata={"description": "ISO 8601; UTC if no offset"})


class AuditEventSchema(Schema):
    id = fields.UUID(dump_only=True)
    actor_id = fields.UUID(dump_only=True, allow_none=True)
    action = fields.String(dump_only=True)
    target_type = fields.String(dump_only=True, allow_none=True)
    target_id = fields.String(dump_only=True, allow_none=True)
    ip = fields.String(dump_only=True, allow_none=True)
    at = fields.DateTime(dump_only=True)
    details = fields.Dict(dump_only=True)


class AuditEventListSchema(PageSchema):
    items = fields.List(fields.Nested(AuditEventSchema), dump_only=True)
