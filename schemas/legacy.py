"""The original single-model apps' POST /predict: what their clients send, and the answer they expect."""

from marshmallow import EXCLUDE, Schema, fields, pre_dump

from constants import PREDICTION_DISCLAIMER
from schemas.predictions import MODALITY_CHOICE, MODALITY_DOC, ImageUploadSchema


class LegacyUploadSchema(ImageUploadSchema):
    class Meta:
        unknown = EXCLUDE  # the original apps' clients send whatever they sent before

    modality = fields.String(load_default=None, validate=MODALITY_CHOICE, metadata=MODALITY_DOC)


class LegacyQuerySchema(Schema):
    modality = fields.String(load_default=None, validate=MODALITY_CHOICE, metadata=MODALITY_DOC)


class LegacyPredictionBodySchema(Schema):
    class_name = fields.String(dump_only=True)
    is_cancerous = fields.Boolean(dump_only=True, metadata={"description": "Malignant or abnormal"})
    confidence = fields.Float(dump_only=True)
    all_predictions = fields.Dict(keys=fields.String(), values=fields.Float(), dump_only=True)


class LegacyPredictionSchema(Schema):
    """The answer the original single-model apps gave, so their clients keep working. Dumps a Prediction row."""

    success = fields.Boolean(dump_only=True)
    prediction = fields.Nested(LegacyPredictionBodySchema, dump_only=True)
    id = fields.UUID(dump_only=True)
    modality = fields.String(dump_only=True)
    disclaimer = fields.String(dump_only=True)

    @pre_dump
    def _from_row(self, row, **_kwargs):
        return {
            "success": True,
            "prediction": {
                "class_name": row.label,
                "is_cancerous": row.is_positive,
                "confidence": row.confidence,
                "all_predictions": row.probabilities,
            },
            "id": row.id,
            "modality": row.modality,
            "disclaimer": PREDICTION_DISCLAIMER,
        }
