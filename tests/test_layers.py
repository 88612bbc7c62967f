"""Calls go one way, over the whole import graph of the application's own code.

    HTTP: resources/ (the JSON API), views/ (browser pages)  - imported by app.py only
      -> auth/ (who is calling)  -> managers/  -> cnn_model/ | services/ | models/
    schemas/ beside the HTTP layer; utils/, constants.py, db.py (and services/) are leaves;
    config.py reads the model registry's defaults and nothing else of ours.
    cnn_model/ is two parts: what serves, which the app imports, and cnn_model.training, what makes
    the models, which imports the serving part and is imported by nothing of the app (nor by it).

The packages and modules are found on disk, so a new package (views/ for one) is held to the rules
as soon as it exists; a new top-level package nobody placed yet fails test_every_package_has_a_place.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from flask import Blueprint

from config import PROJECT_ROOT

NOT_APPLICATION_CODE = {"tests", "bench", "migrations"}
HTTP_LAYERS = {"resources", "views"}
LEAVES = {"utils", "services", "constants", "db"}
# Entry points: the app factory, and the Celery app its workers are started from (as Flask's docs lay it out).
ENTRY_POINTS = {"app", "make_celery"}


def _top_level_names() -> set[str]:
    # Importable modules only: gunicorn.conf.py is read by gunicorn, never imported.
    names = {path.stem for path in PROJECT_ROOT.glob("*.py") if path.stem.isidentifier()}
    names |= {path.parent.name for path in PROJECT_ROOT.glob("*/__init__.py")}
    return names - NOT_APPLICATION_CODE


OURS = _top_level_names()
# What each layer must never import. The HTTP layers themselves are checked by the tests below.
FORBIDDEN: dict[str, set[str]] = {
    "cnn_model": OURS - {"cnn_model"},
    **{leaf: OURS - LEAVES for leaf in LEAVES},
    "models": {"managers", "services", "schemas", "auth"} | HTTP_LAYERS,
    "managers": {"schemas", "auth"} | HTTP_LAYERS,
    "schemas": {"managers", "services", "models", "auth"} | HTTP_LAYERS,
    "auth": {"schemas"} | HTTP_LAYERS,
    # Batch-job workers sit beside the HTTP layers: they call managers, and are started by app.py.
    "workers": {"schemas", "auth"} | HTTP_LAYERS,
    # Settings are read by everything; they know the model registry's defaults and nothing else of ours.
    "config": OURS - {"config", "cnn_model", "constants"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules_of(top: str) -> list[Path]:
    single = PROJECT_ROOT / f"{top}.py"
    return [single] if single.exists() else sorted((PROJECT_ROOT / top).rglob("*.py"))


def _exists(module: str) -> bool:
    path = PROJECT_ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imported_modules(path: Path) -> set[str]:
    """Every module path imports (relative imports resolved), with `from pkg import module` as pkg.module."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if _exists(f"{base}.{alias.name}"))
    return names


def _top(module: str) -> str:
    return module.split(".")[0]


def _offenders(top: str, forbidden: set[str]) -> dict[str, list[str]]:
    found = {
        str(path.relative_to(PROJECT_ROOT)): sorted({m for m in imported_modules(path) if _top(m) in forbidden})
        for path in _modules_of(top)
    }
    return {name: bad for name, bad in found.items() if bad}


def test_every_package_has_a_place():
    assert OURS <= set(FORBIDDEN) | HTTP_LAYERS | ENTRY_POINTS, "place the new package in FORBIDDEN"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN.keys() & OURS))
def test_layer_does_not_import_upwards(layer):
    assert _offenders(layer, FORBIDDEN[layer]) == {}


@pytest.mark.parametrize("importer", sorted(OURS - ENTRY_POINTS))
def test_only_app_imports_the_http_layers(importer):
    """A layer below HTTP imports none of it, and one HTTP layer does not import another."""
    assert _offenders(importer, HTTP_LAYERS - {importer}) == {}


def _defines_blueprint(module_name: str) -> bool:
    """Whether the module builds a flask Blueprint of its own, however it builds it (Blueprint(...), a helper)."""
    module = importlib.import_module(module_name)
    return any(isinstance(value, Blueprint) and value.import_name == module_name for value in vars(module).values())


@pytest.mark.parametrize("layer", sorted(HTTP_LAYERS & OURS))
def test_a_blueprint_does_not_import_another(layer):
    """Blueprints share helpers through a module of their own, not through each other."""
    blueprints = {_module_name(path): path for path in _modules_of(layer) if _defines_blueprint(_module_name(path))}
    assert blueprints, f"no blueprint found in {layer}/"
    offenders = {
        name: sorted(imported_modules(path) & (blueprints.keys() - {name})) for name, path in blueprints.items()
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_blueprints_of_both_http_layers_are_found():
    found = {
        _module_name(p) for layer in HTTP_LAYERS for p in _modules_of(layer) if _defines_blueprint(_module_name(p))
    }
    assert {"views.pages", "views.models", "views.admin", "views.predictions", "views.account"} <= found
    assert {"resources.auth", "resources.tokens"} <= found and "views.session" not in found


@pytest.mark.parametrize("importer", sorted(OURS))
def test_nothing_of_the_app_imports_the_training_code(importer):
    """cnn_model.training makes models; the app, and the serving part of cnn_model, never import it."""
    found = {
        str(path.relative_to(PROJECT_ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith("cnn_model.training")
        )
        for path in _modules_of(importer)
        if not _module_name(path).startswith("cnn_model.training")
    }
    assert {name: bad for name, bad in found.items() if bad} == {}


def _package_graph() -> dict[str, set[str]]:
    """Top-level package or module -> the others of ours it imports, anywhere in its files."""
    return {
        top: {_top(m) for path in _modules_of(top) for m in imported_modules(path) if _top(m) in OURS - {top}}
        for top in OURS
    }


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of graph as [a, b, ..., a], or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done and (found := visit(nxt, [*path, nxt])):
                return found
        done.add(node)
        return None

    return next((found for top in sorted(graph) if (found := visit(top, [top]))), None)


def test_the_packages_import_each_other_without_a_circle():
    """utils and services once imported each other (telemetry -> metrics, storage -> errors)."""
    graph = _package_graph()
    assert "utils" in graph["services"]  # the check would pass vacuously on an empty graph
    assert _circle(graph) is None
