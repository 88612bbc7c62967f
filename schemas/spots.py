"""Spots: what an upload may say about the spot it is of, a spot as listed, one spot with its photos, a rename."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from constants import BODY_SITES, SPOT_NAME_MAX_LENGTH
from schemas.fields import Text

BODY_SITE_DOC = {"description": "Where on the body the spot is", "enum": list(BODY_SITES)}


def spot_name_field(**kwargs) -> Text:
    return Text(
        validate=[
            validate.Length(max=SPOT_NAME_MAX_LENGTH),
            validate.Predicate("strip", error="Give the spot a name."),
        ],
        **kwargs,
    )


def body_site_field(**kwargs) -> Text:
    return Text(validate=validate.OneOf(BODY_SITES), metadata=BODY_SITE_DOC, **kwargs)


class SpotUploadFields(Schema):
    """The part of an upload form that names the spot the photo is of (mixed into the upload schemas)."""

    spot = spot_name_field(
        load_default=None,
        allow_none=True,
        metadata={
            "description": f"A short name of the spot this photo is of (e.g. 'mole, left shoulder'), at most "
            f"{SPOT_NAME_MAX_LENGTH} characters: the caller's spot of that name (case and spacing aside) is used, "
            "or made. Not with spot_id"
        },
    )
    spot_id = fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "One of the caller's spots, by id (404 if not theirs). Not with spot"},
    )
    body_site = body_site_field(load_default=None, allow_none=True)

    @validates_schema
    def _one_spot(self, data, **_kwargs):
        if data.get("spot") is not None and data.get("spot_id") is not None:
            raise ValidationError("Name the spot or give its id, not both.", field_name="spot")


class SpotRefSchema(Schema):
    """The spot a prediction is of."""

    id = fields.UUID(dump_only=True)
    name = fields.String(dump_only=True)
    body_site = fields.String(dump_only=True, allow_none=True, metadata=BODY_SITE_DOC)


class SpotSchema(SpotRefSchema):
    """A spot as listed: dumps a managers.spots.SpotSummary or SpotTimeline."""

    modality = fields.String(dump_only=True, metadata={"description": "The kind of image every photo of it is"})
    count = fields.Integer(dump_only=True, metadata={"description": "How many photos of it are kept"})
    created_at = fields.DateTime(dump_only=True)


class SpotListSchema(Schema):
    items = fields.List(fields.Nested(SpotSchema), dump_only=True)


class SpotChangeSchema(Schema):
    name = spot_name_field(metadata={"description": "The spot's new name (409 if another of the caller's has it)"})
    body_site = body_site_field()

    @validates_schema
    def _something(self, data, **_kwargs):
        if not data:
            raise ValidationError("Give a new name or body site.", field_name="name")
