"""Model cards: what each shipped CNN is, what it was trained on, and how well it did."""

from marshmallow import Schema, fields

from schemas.modalities import KnownModality


class ModelClassSchema(Schema):
    name = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    is_positive = fields.Boolean(dump_only=True)


class ModelArtifactSchema(Schema):
    file = fields.String(dump_only=True)
    bytes = fields.Integer(dump_only=True)
    sha256 = fields.String(dump_only=True)
    quantization = fields.Raw(dump_only=True)


class ModelCardSchema(Schema):
    """A model card as exported with the artifact (cnn_model); free-form parts are passed through."""

    name = fields.String(dump_only=True)
    version = fields.String(dump_only=True)
    modality = fields.String(dump_only=True, validate=KnownModality())
    display_name = fields.String(dump_only=True)
    classes = fields.List(fields.Nested(ModelClassSchema), dump_only=True)
    positive_flag = fields.String(dump_only=True, metadata={"enum": ["is_malignant", "is_abnormal"]})
    input = fields.Raw(dump_only=True)
    preprocessing = fields.Raw(dump_only=True)
    architecture = fields.Raw(dump_only=True)
    artifact = fields.Nested(ModelArtifactSchema, dump_only=True)
    export_check = fields.Raw(dump_only=True)
    decision = fields.Raw(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "How probabilities become the answer: prevalence correction and the "
            "malignant/abnormal threshold (absent: the top-1 class decides)"
        },
    )
    training = fields.Raw(dump_only=True, metadata={"description": "Data provenance, split and training settings"})
    metrics = fields.Raw(dump_only=True, metadata={"description": "Validation and held-out test metrics"})
    plots = fields.Raw(dump_only=True)
    intended_use = fields.Raw(dump_only=True)
    limitations = fields.Raw(dump_only=True)


class ModelCardListSchema(Schema):
    items = fields.List(fields.Nested(ModelCardSchema), dump_only=True)
    total = fields.Integer(dump_only=True)
    missing_modalities = fields.List(
        fields.String(), dump_only=True, metadata={"description": "Modalities with no model installed on this node"}
    )
