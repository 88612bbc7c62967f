"""Test support: pytest plugins (loaded by tests/conftest.py) and helpers.

Their assertions are rewritten as the tests' are, for pytest's detailed failure messages; that has to be
registered before any of them is imported, hence here (the conftest imports some before loading them as plugins).
"""

import pkgutil

import pytest

pytest.register_assert_rewrite(*(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)))
