"""A person's own data: what deleting one's account takes."""

from marshmallow import Schema, validate

from constants import PASSWORD_MAX_LENGTH
from schemas.fields import Text


class AccountDeleteSchema(Schema):
    password = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH),
        metadata={"description": "The account's password, to confirm"},
    )
