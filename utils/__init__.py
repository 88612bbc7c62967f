"""Leaf helpers with no app state of their own: error types, auth decorators, image validation."""
