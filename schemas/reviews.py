"""A clinician's verdict on a result, as the result's owner sees it (schemas.predictions nests it)."""

from marshmallow import Schema, fields

from constants import ReviewVerdict

VERDICTS = [v.value for v in ReviewVerdict]


class ReviewSchema(Schema):
    """A clinician's verdict as the patient sees it (never who the clinician is)."""

    verdict = fields.String(dump_only=True, metadata={"enum": VERDICTS})
    finding = fields.String(dump_only=True, allow_none=True)
    comment = fields.String(dump_only=True, allow_none=True)
    reviewed_at = fields.DateTime(dump_only=True)
