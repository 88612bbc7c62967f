"""Form data in, messages out: load a submitted form with the API's own schema, and word its errors for people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from marshmallow import Schema, ValidationError

from utils.errors import AppError, flatten_validation_messages


def form_values(source: Mapping[str, Any], names: Iterable[str], *, lists: Iterable[str] = ()) -> dict[str, Any]:
    """The named fields of a submitted form or query string; empty ones left out, as if not sent."""
    values: dict[str, Any] = {}
    list_names = set(lists)
    for name in names:
        if name in list_names:
            chosen = [v for v in source.getlist(name) if v != ""]  # type: ignore[attr-defined]
            if chosen:
                values[name] = chosen
        elif name in source and source[name] != "":
            values[name] = source[name]
    return values


def load(schema: Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    """schema.load, with the field -> messages of a refusal raised as FormErrors."""
    try:
        return schema.load(values)
    except ValidationError as error:
        raise FormErrors(flatten_validation_messages(error.messages)) from error


def load_filters(schema: Schema, values: dict[str, Any], per_page: int, errors: dict) -> dict[str, Any]:
    """A list page's filter form loaded with schema; refused fields go into errors and the page shows unfiltered."""
    try:
        return load(schema, {**values, "per_page": per_page})
    except FormErrors as refused:
        errors.update(refused.fields)
        return load(schema, {"per_page": per_page})


def day_bounds(given: Mapping[str, str], after: str, before: str, errors: dict) -> dict[str, str]:
    """Whole-day date fields as the ISO timestamps the schemas take: from the start of the first day to the end
    of the last."""
    bounds = {}
    for field, shift in ((after, 0), (before, 1)):
        if field in given:
            try:
                day = date.fromisoformat(given[field])
            except ValueError:
                errors[field] = ["Give a date such as 2026-03-31."]
                continue
            if shift and day == date.max:
                continue  # the day after 9999-12-31 is past datetime's range, and no record is that late anyway
            bounds[field] = datetime.combine(day + timedelta(days=shift), time()).isoformat()
    return bounds


class FormErrors(Exception):
    """What is wrong with a form, field by field ("_form" for the form as a whole)."""

    def __init__(self, fields: Mapping[str, Any], status: int = 422) -> None:
        super().__init__("form refused")
        self.status = status
        self.fields = {name: _as_list(messages) for name, messages in fields.items()}

    @classmethod
    def from_app_error(cls, error: AppError, field: str = "_form") -> FormErrors:
        """A manager's refusal: its per-field details if it has them, else its message on field."""
        per_field = {k: v for k, v in error.details.items() if isinstance(v, list) and v}
        return cls(per_field or {field: [error.message]}, status=error.status)


def _as_list(messages: Any) -> list[str]:
    if isinstance(messages, list):
        return [str(m) for m in messages]
    if isinstance(messages, dict):
        return [str(m) for value in messages.values() for m in _as_list(value)]
    return [str(messages)]
