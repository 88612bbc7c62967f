"""Liveness and readiness answers."""

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(dump_only=True, metadata={"example": "ok"})


class CheckSchema(Schema):
    ok = fields.Boolean(dump_only=True)
    error = fields.String(dump_only=True, allow_none=True)


class ReadinessSchema(Schema):
    status = fields.String(dump_only=True, metadata={"enum": ["ready", "not_ready"]})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), dump_only=True)
