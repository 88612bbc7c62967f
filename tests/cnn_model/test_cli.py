import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import sample_image

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cnn_model", *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_predict_prints_one_json_object_per_file():
    first = sample_image("skin_lesion")
    second = sample_image("skin_lesion", "mel")
    result = run_cli("predict", "--modality", "skin_lesion", first, second)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(first), str(second)]
    for line in lines:
        assert line["label"] in line["probabilities"]
        assert abs(sum(line["probabilities"].values()) - 1) < 1e-4


def test_predict_prints_the_prediction_set_its_coverage_and_certainty():
    result = run_cli("predict", "--modality", "breast", sample_image("breast"), sample_image("breast", "malignant"))
    assert result.returncode == 0, result.stderr
    for line in map(json.loads, result.stdout.splitlines()):
        assert {"label", "confidence", "is_malignant", "positive_probability", "probabilities"} <= set(line)
        assert line["set_coverage"] == 0.9 and line["certainty"] in ("clear", "uncertain")
        chance = [line["probabilities"][name] for name in line["prediction_set"]]
        assert line["prediction_set"] and chance == sorted(chance, reverse=True)
        assert (line["certainty"] == "clear") == (len(line["prediction_set"]) == 1)


def test_predict_reports_unreadable_files_and_fails(tmp_path):
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("not an image")
    good = sample_image("breast")
    result = run_cli("predict", "--modality", "breast", text_file, tmp_path / "missing.png", good)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "not a readable image" in lines[0]["error"]
    assert "no such file" in lines[1]["error"]
    assert lines[2]["label"] in ("benign", "malignant", "normal")
    assert "error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_evaluate_prints_metrics_and_writes_plots(tmp_path, datasets_root):
    result = run_cli(
        "evaluate",
        "--modality",
        "cervical_cytology",
        "--data",
        datasets_root / "cervical_cytology" / "val",
        "--plots",
        tmp_path,
        "--bootstrap",
        "50",
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == sum(1 for _ in (datasets_root / "cervical_cytology" / "val").glob("*/*"))
    assert 0 <= metrics["balanced_accuracy"] <= 1 and "ci95" in metrics
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0


def test_evaluate_rejects_a_folder_with_foreign_classes(tmp_path):
    (tmp_path / "cats").mkdir()
    result = run_cli("evaluate", "--modality", "breast", "--data", tmp_path)
    assert result.returncode == 2
    assert "not classes of breast" in result.stderr and "Traceback" not in result.stderr
