"""Liveness and readiness answers."""

from marshmallow import Schema, fields


class HealthSchema(Schema):
    """The original skin app's keys (status, model_loaded), plus what is loaded."""

    status = fields.String(dump_only=True, metadata={"example": "healthy"})
    model_loaded = fields.Boolean(dump_only=True)
    models = fields.Dict(
        keys=fields.String(), values=fields.String(), dump_only=True, metadata={"description": "Modality -> version"}
    )
    gate = fields.String(dump_only=True, allow_none=True, metadata={"description": "The modality gate's version"})


class CheckSchema(Schema):
    ok = fields.Boolean(dump_only=True)
    error = fields.String(dump_only=True, allow_none=True)


class ReadinessSchema(Schema):
    status = fields.String(dump_only=True, metadata={"enum": ["ready", "not_ready"]})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), dump_only=True)
