"""Model cards: what each shipped CNN is, what it was trained on, and how well it did.

Dumped from the typed card (cnn_model.card.ModelCard), read by attribute; a section the card file does not
have is left out, as the card's own JSON leaves it out.
"""

from typing import Any

from marshmallow import Schema, fields, missing

from cnn_model.card import CardSection
from schemas.modalities import KnownModality


class CardSectionSchema(Schema):
    """Reads a card section by attribute; an optional field its card file does not have is not written."""

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if not isinstance(obj, CardSection):
            return super().get_attribute(obj, attr, default)
        value = getattr(obj, attr, default)
        return missing if value is None and attr not in obj.present_keys else value


class CardJson(fields.Raw):
    """A free-form part of the card, written as the card file has it."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs) -> Any:
        return value.to_json() if isinstance(value, CardSection) else value


class ModelClassSchema(CardSectionSchema):
    name = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    is_positive = fields.Boolean(dump_only=True)


class ModelArtifactSchema(CardSectionSchema):
    file = fields.String(dump_only=True)
    bytes = fields.Integer(dump_only=True)
    sha256 = fields.String(dump_only=True)
    quantization = CardJson(dump_only=True)


class ModelCardSchema(CardSectionSchema):
    """A model card as exported with the artifact (cnn_model.card.ModelCard); free-form parts as the file has them."""

    name = fields.String(dump_only=True)
    version = fields.String(dump_only=True)
    modality = fields.String(dump_only=True, validate=KnownModality())
    display_name = fields.String(dump_only=True)
    classes = fields.List(fields.Nested(ModelClassSchema), dump_only=True)
    positive_flag = fields.String(dump_only=True, metadata={"enum": ["is_malignant", "is_abnormal"]})
    input = CardJson(dump_only=True)
    preprocessing = CardJson(dump_only=True)
    architecture = CardJson(dump_only=True)
    artifact = fields.Nested(ModelArtifactSchema, dump_only=True)
    export_check = CardJson(dump_only=True)
    decision = CardJson(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "How probabilities become the answer: prevalence correction and the "
            "malignant/abnormal threshold (absent: the top-1 class decides)"
        },
    )
    training = CardJson(dump_only=True, metadata={"description": "Data provenance, split and training settings"})
    quantisation_aware = CardJson(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "An int8 file fine-tuned from a float model: the teacher, the fine-tuning, and how its "
            "served decisions differ from the teacher's on unseen images (absent: the file is its own model's)"
        },
    )
    metrics = CardJson(dump_only=True, metadata={"description": "Validation and held-out test metrics"})
    plots = CardJson(dump_only=True)
    intended_use = CardJson(dump_only=True)
    limitations = CardJson(dump_only=True)


class ModelCardListSchema(Schema):
    items = fields.List(fields.Nested(ModelCardSchema), dump_only=True)
    total = fields.Integer(dump_only=True)
    missing_modalities = fields.List(
        fields.String(), dump_only=True, metadata={"description": "Modalities with no model installed on this node"}
    )
