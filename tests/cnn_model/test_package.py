"""The shape of cnn_model: what serving loads, the import graph inside it, and the model card type."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_model.card import ARTIFACTS_DIR, CardError, GateCard, ModelCard

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "cnn_model"
SHIPPED_CARDS = sorted(ARTIFACTS_DIR.glob("*/card.json"))
RECORDED_CARDS = sorted((REPO / "model_runs").rglob("card*.json"))


def _loaded_modules(code: str, env: dict | None = None) -> set[str]:
    """The modules a fresh interpreter has loaded after running code from the repository root."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_app_loads_neither_tensorflow_nor_the_training_code(tmp_path):
    loaded = _loaded_modules(
        f"from app import create_app\ncreate_app(instance_path={str(tmp_path / 'instance')!r})",
        env={"MEDSIGHT_ENV": "development", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
    )
    assert "cnn_model.runtime" in loaded  # the check would pass vacuously if the app loaded no model code
    assert not {m for m in loaded if m == "tensorflow" or m.startswith(("tensorflow.", "keras"))}
    assert not {m for m in loaded if m.startswith("cnn_model.training")}


def test_importing_the_settings_loads_no_runtime():
    loaded = _loaded_modules("import config")
    assert not {m for m in loaded if m.startswith("ai_edge_litert")}
    assert "cnn_model.runtime" not in loaded and "numpy" not in loaded


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """module -> the cnn_model modules it imports (at the top or inside a function), relative imports resolved.

    A package's own __init__ is not counted as imported by its submodules: Python runs it first, but it is
    not a dependency the submodule's author chose.
    """
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cnn_model_imports_form_no_circle():
    graph = _graph()
    assert "cnn_model.runtime" in graph and "cnn_model.gate" in graph["cnn_model.runtime"]
    assert _cycle(graph) is None


def test_serving_modules_do_not_import_the_training_code():
    offenders = {
        name: sorted(m for m in edges if m.startswith("cnn_model.training"))
        for name, edges in _graph().items()
        if not name.startswith("cnn_model.training")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


@pytest.mark.parametrize("path", SHIPPED_CARDS + RECORDED_CARDS, ids=lambda p: str(p.relative_to(REPO)))
def test_a_card_loads_into_its_type_and_writes_back_byte_identical(path, tmp_path):
    kind = GateCard if path.parent.name == "gate" else ModelCard
    card = kind.load(path)
    copy = tmp_path / "card.json"
    card.save(copy)
    assert copy.read_bytes() == path.read_bytes()


def test_the_shipped_cards_are_all_checked():
    shipped = {p.parent.name for p in SHIPPED_CARDS}
    assert shipped >= {"breast", "cervical_cytology", "chest_xray", "skin_lesion", "gate"}


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        (("artifact", "sha256"), "artifact.sha256"),
        (("input", "size"), "input.size"),
        (("classes", 1, "is_positive"), "classes[1].is_positive"),
        (("modality",), "modality"),
    ],
)
def test_a_card_missing_a_field_fails_at_load_naming_the_field(remove, named, tmp_path):
    data = json.loads((ARTIFACTS_DIR / "breast" / "card.json").read_text())
    holder = data
    for key in remove[:-1]:
        holder = holder[key]
    del holder[remove[-1]]
    path = tmp_path / "card.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CardError) as raised:
        ModelCard.load(path)
    assert str(raised.value) == f"{path}.{named} is missing"


def test_a_card_with_a_field_of_the_wrong_kind_fails_at_load(tmp_path):
    data = json.loads((ARTIFACTS_DIR / "breast" / "card.json").read_text())
    data["input"]["size"] = "large"
    path = tmp_path / "card.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CardError, match=r"input\.size: expected int, got str"):
        ModelCard.load(path)


def test_the_card_is_read_by_attribute():
    card = ModelCard.load(ARTIFACTS_DIR / "breast" / "card.json")
    assert card.modality == "breast" and card.class_names == ("benign", "malignant", "normal")
    assert card.decision.positive_threshold == 0.2154 and card.input.size == 160
    assert card.held_out_checks[0].version and card.cross_validation.source == "model_runs/breast/baseline"
