"""Which modality names a schema accepts: the modality registry's, read when they are needed.

KnownModality reads the registry on each call (validation), and apispec reads its `choices` into
the field's enum when a schema enters the OpenAPI document (app creation), so a registered
modality is accepted and documented without editing any schema.
"""

from marshmallow import ValidationError, validate

from cnn_model.modalities import MODALITIES
from constants import AUTO_MODALITY


class KnownModality(validate.Validator):
    """A registered modality's name; with allow_auto, also "auto" (let the modality gate decide)."""

    error = "Must be one of: {choices}."

    def __init__(self, *, allow_auto: bool = False) -> None:
        self.allow_auto = allow_auto

    @property
    def choices(self) -> tuple[str, ...]:
        return (*MODALITIES, AUTO_MODALITY) if self.allow_auto else tuple(MODALITIES)

    def __call__(self, value: str) -> str:
        if value not in self.choices:
            raise ValidationError(self.error.format(input=value, choices=", ".join(self.choices)))
        return value

    def _repr_args(self) -> str:
        return f"choices={self.choices!r}"
