"""Paging: what a list endpoint takes (page, per_page; cursor where offered) and the page information it returns."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from constants import PAGE_NUMBER_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from utils.cursor import CURSOR_MAX_LENGTH, Cursor


class PageQuerySchema(Schema):
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=PAGE_NUMBER_MAX),
        metadata={"description": f"1-based page number, at most {PAGE_NUMBER_MAX}"},
    )
    per_page = fields.Integer(
        load_default=PAGE_SIZE_DEFAULT,
        validate=validate.Range(min=1, max=PAGE_SIZE_MAX),
        metadata={"description": f"Items per page, at most {PAGE_SIZE_MAX}"},
    )


class PageSchema(Schema):
    """Dumps a managers.pagination.Page; subclasses say what the items are."""

    total = fields.Integer(dump_only=True, metadata={"description": "How many items match, on all pages"})
    page = fields.Integer(dump_only=True)
    per_page = fields.Integer(dump_only=True)
    pages = fields.Integer(dump_only=True, metadata={"description": "How many pages there are"})


class CursorField(fields.String):
    """An opaque next_cursor from an earlier page, loaded as a utils.cursor.Cursor."""

    default_error_messages = {"invalid_cursor": "Not a valid cursor; use next_cursor from a previous page."}

    def _deserialize(self, value, attr, data, **kwargs) -> Cursor:
        token = super()._deserialize(value, attr, data, **kwargs)
        try:
            return Cursor.decode(token)
        except ValueError as error:
            raise self.make_error("invalid_cursor") from error


class CursorPageQuerySchema(PageQuerySchema):
    """page/per_page as everywhere, or cursor: continue right after the last item of an earlier page."""

    cursor = CursorField(
        metadata={
            "maxLength": CURSOR_MAX_LENGTH,
            "pattern": "^[A-Za-z0-9_-]+$",  # URL-safe base64 without padding
            "description": "next_cursor of the previous page: as fast at any depth (leave page out)",
        },
    )

    @validates_schema
    def _cursor_or_page(self, data, **_kwargs):
        if data.get("cursor") is not None and data.get("page", 1) != 1:
            raise ValidationError("Give either page or cursor, not both.", field_name="cursor")


class CursorPageSchema(PageSchema):
    """A page of a list that can also be continued by cursor."""

    page = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "null when asked for by cursor"})
    next_cursor = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Pass as cursor for the items after this page; null on the last page"},
    )
