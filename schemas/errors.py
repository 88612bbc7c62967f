"""The error body every endpoint answers with when something is wrong (for the OpenAPI document)."""

from marshmallow import Schema, fields


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "Stable machine-readable code", "example": "validation_error"}
    )
    message = fields.String(required=True, metadata={"description": "What went wrong, for people"})
    details = fields.Dict(required=True, metadata={"description": "Specifics, e.g. field name -> list of problems"})
    request_id = fields.String(
        metadata={"description": "The request's id, as in the X-Request-ID header and the server's log lines"}
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)
