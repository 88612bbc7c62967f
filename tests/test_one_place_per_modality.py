"""Everything about a modality lives in its module (cnn_model/modalities/<name>.py); the rest reads the registry.

A modality's name spelled as a string in application code is a fact kept in a second place: the day that
modality is renamed, or another one needs the same treatment, the copy is missed. Tests, migrations, bench/
and documentation may name modalities (they show or check them); docstrings too (usage examples).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cnn_model.modalities import MODALITIES
from config import PROJECT_ROOT
from tests.test_layers import OURS

MODALITIES_DIR = PROJECT_ROOT / "cnn_model" / "modalities"
TEMPLATES_DIR = PROJECT_ROOT / "templates"


def _pattern(name: str) -> re.Pattern:
    """name as it is spelled in code: an identifier-like name anywhere, a plain word ("breast") only where it
    stands alone or between punctuation (a path, a quoted value), not in a sentence about a breast ultrasound."""
    if "_" in name:
        return re.compile(rf"\b{re.escape(name)}\b")
    return re.compile(rf"(?<![\w\s]){re.escape(name)}(?![\w\s])")


PATTERNS = {name: _pattern(name) for name in MODALITIES}


def _named(text: str) -> list[str]:
    return [name for name, pattern in PATTERNS.items() if pattern.search(text)]


def _python_files() -> list[Path]:
    files = []
    for top in sorted(OURS):
        single = PROJECT_ROOT / f"{top}.py"
        files += [single] if single.exists() else sorted((PROJECT_ROOT / top).rglob("*.py"))
    return [path for path in files if MODALITIES_DIR not in path.parents]


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (of the module, a class or a function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def modality_literals(path: Path) -> list[str]:
    """'line: the literal' for each string in path's code that spells a modality's name."""
    tree = ast.parse(path.read_text("utf-8"))
    skip = _docstrings(tree)
    return [
        f"{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        if _named(node.value)
    ]


def template_mentions(path: Path) -> list[str]:
    lines = enumerate(path.read_text("utf-8").splitlines(), 1)
    return [f"{number}: {line.strip()}" for number, line in lines if _named(line)]


def test_the_names_are_found_where_they_are_spelled():
    assert set(MODALITIES) >= {"skin_lesion", "chest_xray", "breast", "cervical_cytology"}
    assert _named("model_runs/breast/folds.json") == ["breast"] and _named("'breast'") == ["breast"]
    assert _named("a breast ultrasound or a Pap smear cell") == []
    assert _named("{% if spec.name == 'skin_lesion' %}") == ["skin_lesion"]


def test_the_modality_modules_are_not_exempt_by_accident():
    files = _python_files()
    assert PROJECT_ROOT / "views" / "model_summaries.py" in files
    assert PROJECT_ROOT / "cnn_model" / "training" / "heatmap_check.py" in files
    assert not any(MODALITIES_DIR in path.parents for path in files)


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_application_code_spells_no_modality_name(path):
    assert modality_literals(path) == []


@pytest.mark.parametrize("path", sorted(TEMPLATES_DIR.rglob("*.html")), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_templates_spell_no_modality_name(path):
    assert template_mentions(path) == []
