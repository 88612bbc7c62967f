"""Paging: what a list endpoint takes (page, per_page) and the page information it returns."""
from marshmallow import Schema, fields, validate

from constants import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1), metadata={"description": "1-based page number"})
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
