"""The care loop's shapes: shares with clinicians, clinicians' reviews and queue, share links, report options."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from marshmallow import Schema, ValidationError, fields, post_load, pre_dump, validate

from constants import (
    EMAIL_MAX_LENGTH,
    REVIEW_COMMENT_MAX_LENGTH,
    REVIEW_FINDING_MAX_LENGTH,
    SHARE_LINK_DAYS_DEFAULT,
    SHARE_LINK_DAYS_MAX,
)
from schemas.fields import Text
from schemas.predictions import PredictionSchema
from schemas.reviews import VERDICTS

# How a share refused for its address is documented: the same answer whether or not the account exists.
NOT_A_CLINICIAN = (
    "The email is not a clinician's account (code not_a_clinician): the same answer whether or not an account of "
    "that email exists"
)


class ShareCreateSchema(Schema):
    clinician_email = Text(
        required=True,
        validate=validate.Length(min=3, max=EMAIL_MAX_LENGTH),
        metadata={"description": "The email of the clinician's MedSight account"},
    )


class ShareSchema(Schema):
    id = fields.UUID(dump_only=True)
    prediction_id = fields.UUID(dump_only=True)
    clinician_email = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)

    @pre_dump
    def _from_row(self, share, **_kwargs):
        return {
            "id": share.id,
            "prediction_id": share.prediction_id,
            "clinician_email": share.clinician.email,
            "created_at": share.created_at,
        }


class SpotShareSchema(Schema):
    spot_id = fields.UUID(dump_only=True)
    clinician_email = fields.String(dump_only=True)
    shares = fields.List(
        fields.Nested(ShareSchema),
        dump_only=True,
        metadata={"description": "One share per result the spot has now, oldest first; later photos are not shared"},
    )

    @pre_dump
    def _from_spot_share(self, shared, **_kwargs):
        return {"spot_id": shared.spot.id, "clinician_email": shared.clinician.email, "shares": shared.shares}


class ReviewCreateSchema(Schema):
    verdict = Text(required=True, validate=validate.OneOf(VERDICTS), metadata={"enum": VERDICTS})
    finding = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=REVIEW_FINDING_MAX_LENGTH),
        metadata={
            "description": "agree: the model's finding (default) or a class name; disagree: the class name the "
            "clinician reads instead, if any; amend: required, the finding in the clinician's words"
        },
    )
    comment = Text(load_default=None, allow_none=True, validate=validate.Length(max=REVIEW_COMMENT_MAX_LENGTH))


class SharedPredictionSchema(PredictionSchema):
    """A result as the clinician it is shared with sees it: images through the clinician's (audited) routes."""

    image_endpoint = "care.SharedPredictionImage"


class QueueItemSchema(Schema):
    prediction = fields.Nested(SharedPredictionSchema, dump_only=True)
    shared_at = fields.DateTime(dump_only=True)
    reviewed_at = fields.DateTime(dump_only=True, allow_none=True, metadata={"description": "By this clinician"})


class ReviewQueueSchema(Schema):
    items = fields.List(fields.Nested(QueueItemSchema), dump_only=True)


class VersionAgreementSchema(Schema):
    model_version = fields.String(dump_only=True)
    reviews = fields.Integer(dump_only=True)
    agree = fields.Integer(dump_only=True)
    disagree = fields.Integer(dump_only=True)
    amend = fields.Integer(dump_only=True)
    agreement = fields.Float(dump_only=True, metadata={"description": "agree / reviews, 0 to 1"})


class ModelReviewsSchema(Schema):
    modality = fields.String(dump_only=True)
    versions = fields.List(fields.Nested(VersionAgreementSchema), dump_only=True)


class LinkCreateSchema(Schema):
    expires_in_days = fields.Integer(
        load_default=SHARE_LINK_DAYS_DEFAULT, validate=validate.Range(min=1, max=SHARE_LINK_DAYS_MAX)
    )


class LinkSchema(Schema):
    id = fields.UUID(dump_only=True)
    url = fields.String(dump_only=True, metadata={"description": "The link itself; given once, when it is made"})
    expires_at = fields.DateTime(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


def _zone(name: str) -> ZoneInfo:
    if name not in available_timezones():
        raise ValidationError("Name an IANA time zone, such as Europe/Paris.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Name an IANA time zone, such as Europe/Paris.") from None


class ReportQuerySchema(Schema):
    tz = Text(
        load_default=None,
        validate=validate.Length(max=64),
        metadata={"description": "The reader's IANA time zone (Europe/Paris); times are in UTC without it"},
    )

    @post_load
    def _zone(self, data, **_kwargs):
        data["zone"] = _zone(data["tz"]) if data.get("tz") else None
        return data
