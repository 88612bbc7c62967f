"""Calls go one way: resources -> managers -> (cnn_model | services | models); schemas sit beside resources."""

from __future__ import annotations

import ast

import pytest

from config import PROJECT_ROOT

# Packages a layer must never import: it would make the layering go up, or sideways into the work.
FORBIDDEN = {
    "schemas": {"managers", "resources", "services"},
    "managers": {"resources", "schemas"},
    "cnn_model": {"flask", "managers", "resources", "schemas", "services", "models"},
}


def imported_packages(path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_upwards(layer):
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): sorted(imported_packages(path) & FORBIDDEN[layer])
        for path in (PROJECT_ROOT / layer).glob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
