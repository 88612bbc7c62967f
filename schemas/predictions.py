"""Predictions: the upload form, the history filters, and the one shape a prediction is shown in."""

from flask import url_for
from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, post_load, pre_dump, validate, validates_schema
from werkzeug.datastructures import FileStorage

from cnn_model.conformal import CERTAINTIES
from cnn_model.modalities import get_spec
from constants import AUTO_MODALITY, IDEMPOTENCY_KEY_MAX_LENGTH, PREDICTION_DISCLAIMER, PREDICTION_NOTE_MAX_LENGTH
from schemas.fields import Text, UtcDateTime
from schemas.modalities import KnownModality
from schemas.pagination import CursorPageQuerySchema, CursorPageSchema
from schemas.reviews import ReviewSchema
from schemas.spots import SpotRefSchema, SpotSchema, SpotUploadFields

MODALITY_CHOICE = KnownModality()  # also gives the OpenAPI enum
MODALITY_DOC = {"description": "What kind of image this is"}
UPLOAD_MODALITY_CHOICE = KnownModality(allow_auto=True)
UPLOAD_MODALITY_DOC = {
    "description": (
        "What kind of image this is. Left out, or 'auto', the modality gate decides; named, the gate checks it "
        "(422 modality_mismatch when the image is of another kind). Either way an image of no kind MedSight "
        "reads is refused (422 not_a_medical_image)."
    )
}


def auto_to_none(modality: str | None) -> str | None:
    """The declared modality, or None where the client left it to the gate."""
    return None if modality in (None, AUTO_MODALITY) else modality


class FileUpload(Upload):
    """A multipart file part; the same name sent as a plain text field is a validation error."""

    default_error_messages = {"not_a_file": "A file upload is required: send the image as a file part, not text."}

    def _deserialize(self, value, attr, data, **kwargs) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise self.make_error("not_a_file")
        return value


class ImageUploadSchema(Schema):
    """The image comes as multipart field `file` (or `image`, as some clients send it)."""

    file = FileUpload(
        metadata={"description": "The image: JPEG, PNG, BMP, TIFF or WebP. Required, unless sent as `image`."}
    )
    image = FileUpload(metadata={"description": "Alternative name for `file`: one of the two is required (else 422)"})

    @validates_schema(skip_on_field_errors=False)
    def _one_image(self, data, **_kwargs):
        if "file" not in data and "image" not in data:
            raise ValidationError("Attach the image as multipart field 'file'.", field_name="file")

    @post_load
    def _upload(self, data, **_kwargs):
        if "modality" in data:
            data["modality"] = auto_to_none(data["modality"])
        # By presence, not truth: a part with an empty filename (an empty file input) is falsy,
        # and is judged by its bytes like any other upload.
        data["upload"] = data.pop("file") if "file" in data else data.pop("image")
        data.pop("image", None)
        return data


class PredictionUploadSchema(SpotUploadFields, ImageUploadSchema):
    modality = Text(load_default=AUTO_MODALITY, validate=UPLOAD_MODALITY_CHOICE, metadata=UPLOAD_MODALITY_DOC)
    note = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=PREDICTION_NOTE_MAX_LENGTH),
        metadata={"description": f"Free text kept with the record, at most {PREDICTION_NOTE_MAX_LENGTH} characters"},
    )


class IdempotencyHeaderSchema(Schema):
    idempotency_key = Text(
        data_key="Idempotency-Key",
        load_default=None,
        validate=validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX_LENGTH),
        metadata={
            "description": "Any string of yours naming this upload (a UUID, say): sent again by the same user within "
            "24 hours, the answer is the first upload's prediction (200, Idempotent-Replayed: true) instead of a "
            "second copy (201)"
        },
    )


class PredictionQuerySchema(CursorPageQuerySchema):
    modality = Text(validate=MODALITY_CHOICE, metadata=MODALITY_DOC)
    label = Text(validate=validate.Length(min=1, max=64), metadata={"description": "A class name"})
    is_positive = fields.Boolean(metadata={"description": "Only malignant/abnormal results (or only the others)"})
    is_malignant = fields.Boolean(metadata={"description": "Same as is_positive"})
    is_abnormal = fields.Boolean(metadata={"description": "Same as is_positive"})
    certainty = Text(
        validate=validate.OneOf(CERTAINTIES),
        metadata={
            "description": "Only clear results (one finding in the prediction set) or only uncertain ones; "
            "predictions made before prediction sets have none and match neither"
        },
    )
    created_after = UtcDateTime(metadata={"description": "ISO 8601; UTC if no offset"})
    created_before = UtcDateTime(metadata={"description": "ISO 8601; UTC if no offset"})
    job_id = fields.UUID(metadata={"description": "Only the predictions this batch job made"})

    @validates_schema
    def _consistent_flags(self, data, **_kwargs):
        given = {data[name] for name in ("is_positive", "is_malignant", "is_abnormal") if name in data}
        if len(given) > 1:
            raise ValidationError("is_positive, is_malignant and is_abnormal disagree.", field_name="is_positive")

    @post_load
    def _filters(self, data, **_kwargs):
        flags = [data.pop(name) for name in ("is_positive", "is_malignant", "is_abnormal") if name in data]
        data["is_positive"] = flags[0] if flags else None
        return data


class AdminPredictionQuerySchema(PredictionQuerySchema):
    user_id = fields.UUID(metadata={"description": "Only this user's predictions"})


class ModelInfoSchema(Schema):
    name = fields.String(dump_only=True)
    version = fields.String(dump_only=True)
    sha256 = fields.String(dump_only=True)


class ImageInfoSchema(Schema):
    content_type = fields.String(dump_only=True)
    width = fields.Integer(dump_only=True)
    height = fields.Integer(dump_only=True)
    sha256 = fields.String(dump_only=True)


# How sure the model is, shared by every shape a prediction is shown in (cnn_model.conformal).
PREDICTION_SET_FIELD = fields.List(
    fields.String(),
    dump_only=True,
    allow_none=True,
    metadata={
        "description": "The findings (class names) the model cannot rule out, most probable first: the true one "
        "is among them for set_coverage of images of each class. Null for predictions made before prediction sets"
    },
)
SET_COVERAGE_FIELD = fields.Float(
    dump_only=True,
    allow_none=True,
    metadata={"description": "How often the prediction set holds the true finding, e.g. 0.9; null where no set"},
)
CERTAINTY_FIELD = fields.String(
    dump_only=True,
    allow_none=True,
    validate=validate.OneOf(CERTAINTIES),
    metadata={
        "description": "clear: the prediction set holds one finding; uncertain: more than one; null where no set"
    },
)


def certainty_fields(result) -> dict:
    """prediction_set, set_coverage and certainty of a stored row or a runner's prediction (None where it has none)."""
    prediction_set = getattr(result, "prediction_set", None)
    return {
        "prediction_set": list(prediction_set) if prediction_set is not None else None,
        "set_coverage": getattr(result, "set_coverage", None),
        "certainty": getattr(result, "certainty", None),
    }


class PredictionSchema(Schema):
    """A prediction as its owner sees it. Dumps a models.Prediction row."""

    image_endpoint = "predictions.PredictionImage"

    id = fields.UUID(dump_only=True)
    modality = fields.String(dump_only=True, validate=MODALITY_CHOICE, metadata=MODALITY_DOC)
    modality_detected = fields.Boolean(
        dump_only=True, metadata={"description": "True where the modality gate chose the modality (none was named)"}
    )
    label = fields.String(dump_only=True, metadata={"description": "The most likely class"})
    display_name = fields.String(dump_only=True, metadata={"description": "The label in plain words"})
    confidence = fields.Float(dump_only=True, metadata={"description": "Probability of the label, 0 to 1"})
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), dump_only=True)
    is_positive = fields.Boolean(
        dump_only=True,
        metadata={
            "description": "Malignant/abnormal by the model's operating rule (its card's `decision`): where the "
            "card sets a threshold on positive_probability (for a target sensitivity), it can be true while "
            "the most likely single class is benign"
        },
    )
    positive_probability = fields.Float(
        dump_only=True, metadata={"description": "Summed probability of the malignant/abnormal classes, 0 to 1"}
    )
    is_malignant = fields.Boolean(
        dump_only=True, metadata={"description": "Same as is_positive, where the model's positive_flag is this"}
    )
    is_abnormal = fields.Boolean(
        dump_only=True, metadata={"description": "Same as is_positive, where the model's positive_flag is this"}
    )
    class_descriptions = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        dump_only=True,
        metadata={"description": "One plain-language sentence per class"},
    )
    prediction_set = PREDICTION_SET_FIELD
    set_coverage = SET_COVERAGE_FIELD
    certainty = CERTAINTY_FIELD
    model = fields.Nested(ModelInfoSchema, dump_only=True)
    image = fields.Nested(ImageInfoSchema, dump_only=True)
    note = fields.String(dump_only=True, allow_none=True)
    job_id = fields.UUID(dump_only=True, allow_none=True, metadata={"description": "The batch job that made it"})
    created_at = fields.DateTime(dump_only=True)
    image_url = fields.String(dump_only=True, metadata={"description": "The uploaded photo (owner only)"})
    heatmap_url = fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Where the model looked, as a PNG overlay"}
    )
    disclaimer = fields.String(dump_only=True)
    spot = fields.Nested(
        SpotRefSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "The spot this photo is of, where the upload named one"},
    )
    looks_like_other_lesion = fields.Boolean(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "A skin photo of a spot: true where it lies farther from every earlier photo of the "
            "spot than 95% of pairs of photos of one lesion do, so it may show another lesion; null for a spot's "
            "first photo and where no comparison is made"
        },
    )
    review = fields.Nested(
        ReviewSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "The latest clinician's verdict on this result, once one is shared and reviewed"},
    )

    @pre_dump
    def _from_row(self, row, **_kwargs):
        spec = get_spec(row.modality)
        return {
            **row.facts(),
            "display_name": spec.class_spec(row.label).display_name,
            spec.positive_flag: row.is_positive,
            "class_descriptions": {c.name: c.description for c in spec.classes},
            "image_url": url_for(self.image_endpoint, prediction_id=row.id, kind="image"),
            "heatmap_url": url_for(self.image_endpoint, prediction_id=row.id, kind="heatmap")
            if row.heatmap_key
            else None,
            "disclaimer": PREDICTION_DISCLAIMER,
            "review": row.review,
            "spot": row.spot,
            "looks_like_other_lesion": row.looks_like_other_lesion,
            **self._extra(row),
        }

    def _extra(self, row) -> dict:
        return {}


class PredictionListSchema(CursorPageSchema):
    items = fields.List(fields.Nested(PredictionSchema), dump_only=True)


class SpotTimelineSchema(SpotSchema):
    """One spot with its photos' results: dumps a managers.spots.SpotTimeline."""

    predictions = fields.List(
        fields.Nested(PredictionSchema), dump_only=True, metadata={"description": "Its photos' results, oldest first"}
    )


class OwnerSchema(Schema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)


class AdminPredictionSchema(PredictionSchema):
    """A prediction as an admin sees it: with its owner, and URLs to the admin (audited) image routes."""

    image_endpoint = "admin.AdminPredictionImage"

    owner = fields.Nested(OwnerSchema, dump_only=True)

    def _extra(self, row) -> dict:
        return {"owner": {"id": row.owner.id, "email": row.owner.email}}


class AdminPredictionListSchema(CursorPageSchema):
    items = fields.List(fields.Nested(AdminPredictionSchema), dump_only=True)
