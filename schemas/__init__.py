"""Marshmallow schemas: what each endpoint takes in (validated) and gives back (one shape per resource)."""
