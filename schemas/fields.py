"""Input fields every schema builds on: text without control characters, strict booleans, UTC date-times.

Text is the one rule for free text from clients (JSON bodies, forms, query strings): characters a
database cannot store (NUL on PostgreSQL, lone surrogates anywhere) or a log should not replay
(terminal escapes) are refused with 422 on every backend alike, instead of failing deep inside a
driver.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from marshmallow import ValidationError, fields

# C0 controls but tab, newline and carriage return; DEL and the C1 controls; UTF-16 surrogates.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_CHARACTERS_MESSAGE = "Must not contain control characters (such as NUL) or unpaired surrogates."


def refuse_control_characters(value: str) -> str:
    """The one text validator: value unchanged, or ValidationError if it holds a control character."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError(CONTROL_CHARACTERS_MESSAGE)
    return value


class Text(fields.String):
    """A string from a client, refused (422) if it carries control characters."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return refuse_control_characters(super()._deserialize(value, attr, data, **kwargs))


class Email(fields.Email):
    """An email address, held to the same text rule before the address check."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if isinstance(value, str):
            refuse_control_characters(value)
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON boolean: true or false only (marshmallow would take 1, 0, "yes"...)."""

    default_error_messages = {"invalid": "Must be true or false."}

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time (UTC if it names no offset), loaded as UTC; one UTC cannot hold is a 422."""

    default_error_messages = {"out_of_range": "The date is out of range once converted to UTC."}

    def __init__(self, **kwargs) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError as error:  # 9999-12-31T23:59:59-23:59, 0001-01-01T00:00:00+14:00
            raise self.make_error("out_of_range") from error
