"""The original single-model apps' POST /predict: what their clients send, and the answer they expect."""

from marshmallow import EXCLUDE, Schema, fields, post_load, pre_dump

from cnn_model.modalities import get_spec
from constants import AUTO_MODALITY, PREDICTION_DISCLAIMER
from schemas.fields import Text
from schemas.predictions import (
    CERTAINTY_FIELD,
    PREDICTION_SET_FIELD,
    SET_COVERAGE_FIELD,
    UPLOAD_MODALITY_CHOICE,
    UPLOAD_MODALITY_DOC,
    ImageUploadSchema,
    auto_to_none,
    certainty_fields,
)


class LegacyUploadSchema(ImageUploadSchema):
    class Meta:
        unknown = EXCLUDE  # the original apps' clients send whatever they sent before

    modality = Text(load_default=AUTO_MODALITY, validate=UPLOAD_MODALITY_CHOICE, metadata=UPLOAD_MODALITY_DOC)


class LegacyQuerySchema(Schema):
    modality = Text(load_default=AUTO_MODALITY, validate=UPLOAD_MODALITY_CHOICE, metadata=UPLOAD_MODALITY_DOC)

    @post_load
    def _auto(self, data, **_kwargs):
        data["modality"] = auto_to_none(data["modality"])
        return data


class LegacyPredictionBodySchema(Schema):
    class_name = fields.String(dump_only=True, metadata={"description": "The finding in plain words"})
    is_cancerous = fields.Boolean(dump_only=True, metadata={"description": "Malignant or abnormal"})
    confidence = fields.Float(dump_only=True)
    all_predictions = fields.Dict(
        keys=fields.String(), values=fields.Float(), dump_only=True, metadata={"description": "By display name"}
    )


def finding_sentence(display_name: str, description: str, confidence: float) -> str:
    """One plain sentence on the finding and how sure the model is."""
    finding = description[0].lower() + description[1:]
    # A model is never certain: rounding 0.9996 up to "100%" would say it is.
    sure = "more than 99%" if confidence > 0.99 else f"{confidence:.0%}"
    return f"The model reads this image as {display_name} with {sure} confidence: {finding}"


class LegacyPredictionSchema(Schema):
    """The skin app's answer with display names, plus the breast app's classification and description.

    Dumps a stored Prediction row or an unstored classification (anonymous use): both carry modality,
    label, confidence, probabilities and is_positive; only a stored one has an id.
    """

    success = fields.Boolean(dump_only=True)
    prediction = fields.Nested(LegacyPredictionBodySchema, dump_only=True)
    classification = fields.String(dump_only=True, metadata={"description": "The finding in plain words"})
    description = fields.String(dump_only=True, metadata={"description": "One sentence on the finding"})
    id = fields.UUID(dump_only=True, allow_none=True, metadata={"description": "The stored record; null if none"})
    stored = fields.Boolean(dump_only=True, metadata={"description": "Kept in the caller's history"})
    modality = fields.String(dump_only=True)
    modality_detected = fields.Boolean(dump_only=True)
    prediction_set = PREDICTION_SET_FIELD
    set_coverage = SET_COVERAGE_FIELD
    certainty = CERTAINTY_FIELD
    disclaimer = fields.String(dump_only=True)

    @pre_dump
    def _from_result(self, result, **_kwargs):
        spec = get_spec(result.modality)
        finding = spec.class_spec(result.label)
        stored_id = getattr(result, "id", None)
        return {
            "success": True,
            "prediction": {
                "class_name": finding.display_name,
                "is_cancerous": result.is_positive,
                "confidence": result.confidence,
                "all_predictions": {spec.class_spec(n).display_name: p for n, p in result.probabilities.items()},
            },
            "classification": finding.display_name,
            "description": finding_sentence(finding.display_name, finding.description, result.confidence),
            "id": stored_id,
            "stored": stored_id is not None,
            "modality": result.modality,
            "modality_detected": result.modality_detected,
            **certainty_fields(result),
            "disclaimer": PREDICTION_DISCLAIMER,
        }
