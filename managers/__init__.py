"""The business: use cases that own their transactions. Called by resources, never by the layers below."""

from managers.transactions import UnitOfWork, unit_of_work

__all__ = ["UnitOfWork", "unit_of_work"]
