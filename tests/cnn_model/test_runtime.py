import hashlib
import io
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_model.data import list_class_folder
from cnn_model.evaluation import evaluate_runner
from cnn_model.modalities import MODALITIES, SPECS
from cnn_model.preprocessing import preprocess_for_model
from cnn_model.runtime import ARTIFACTS_DIR, ActivationMap, ArtifactError, ModelRegistry, ModelRunner
from tests.support.images import sample_image, sample_images

MAX_ARTIFACT_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def registry():
    return ModelRegistry()


@pytest.mark.parametrize("modality", MODALITIES)
def test_shipped_artifact_matches_its_card_and_spec(modality):
    folder = ARTIFACTS_DIR / modality
    card = json.loads((folder / "card.json").read_text())
    model_bytes = (folder / "model.tflite").read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == card["artifact"]["sha256"]
    assert len(model_bytes) == card["artifact"]["bytes"] <= MAX_ARTIFACT_BYTES
    assert [c["name"] for c in card["classes"]] == list(SPECS[modality].class_names)
    check = card["export_check"]
    assert check["passed"] and check["quantization"] == card["artifact"]["quantization"]
    # The export never overturned a confident decision of the trained Keras model.
    assert check["val"]["top1_agreement"] >= 0.99 or all(
        margin < 0.05 for margin in check["val_and_test_slice"]["disagreement_margins"]
    )
    for plot in card["plots"].values():
        assert (folder / plot).stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("modality", MODALITIES)
def test_evaluating_on_val_reproduces_the_card(modality, registry, datasets_root):
    runner = registry.get(modality)
    samples = list_class_folder(datasets_root / modality / "val", runner.spec)
    metrics = evaluate_runner(runner, samples, bootstrap_rounds=0)["metrics"]
    card_metrics = runner.card.metrics["val"]
    assert metrics["n"] == card_metrics["n"]
    for key in ("accuracy", "balanced_accuracy", "macro_auc", "accuracy_at_prevalence"):
        assert metrics.get(key) == pytest.approx(card_metrics.get(key), abs=1e-4), key
    assert metrics["confusion_matrix"] == card_metrics["confusion_matrix"]
    assert metrics["binary"] == card_metrics["binary"]


def test_a_tampered_artifact_is_refused(tmp_path):
    copy = tmp_path / "breast"
    shutil.copytree(ARTIFACTS_DIR / "breast", copy)
    data = bytearray((copy / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its card"):
        ModelRunner(copy)


def test_a_card_whose_classes_differ_from_the_spec_is_refused(tmp_path):
    copy = tmp_path / "breast"
    shutil.copytree(ARTIFACTS_DIR / "breast", copy)
    card = json.loads((copy / "card.json").read_text())
    card["classes"] = list(reversed(card["classes"]))
    (copy / "card.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="differ from the spec"):
        ModelRunner(copy)


def test_serving_preprocesses_as_the_card_says_the_model_was_trained(tmp_path):
    copy = tmp_path / "breast"
    shutil.copytree(ARTIFACTS_DIR / "breast", copy)
    card = json.loads((copy / "card.json").read_text())
    assert card["input"]["resize_mode"] == SPECS["breast"].resize_mode == "stretch"
    card["input"]["resize_mode"] = "pad"  # as if the spec had changed since this model was trained
    (copy / "card.json").write_text(json.dumps(card))
    runner = ModelRunner(copy)
    assert runner.spec.resize_mode == "pad"
    image = Image.new("L", (300, 100), 40)
    image.paste(220, (0, 0, 300, 2))
    served = runner.predict(image).probabilities
    padded, _ = runner.run(preprocess_for_model(image, runner.spec)[None])
    stretched, _ = runner.run(preprocess_for_model(image, SPECS["breast"])[None])
    assert served == pytest.approx(dict(zip(runner.spec.class_names, padded[0], strict=True)))
    assert served != pytest.approx(dict(zip(runner.spec.class_names, stretched[0], strict=True)))


def test_serving_hides_the_margins_the_card_says_training_hid(tmp_path):
    copy = tmp_path / "chest_xray"
    shutil.copytree(ARTIFACTS_DIR / "chest_xray", copy)
    card = json.loads((copy / "card.json").read_text())
    image = Image.new("L", (200, 200), 90)
    image.paste(255, (0, 0, 200, 20))  # only the top strip differs from a flat grey film
    flat = Image.new("L", (200, 200), 90)

    def served_with(mask):
        card["input"]["mask"] = mask
        (copy / "card.json").write_text(json.dumps(card))
        runner = ModelRunner(copy)
        assert runner.spec.input_mask == (tuple(mask) if mask else None)
        return runner.predict(image).probabilities, runner.predict(flat).probabilities

    unmasked, unmasked_flat = served_with(None)
    assert unmasked != pytest.approx(unmasked_flat)
    masked, masked_flat = served_with([0.15, 0.08, 0.08, 0.08])
    assert masked == pytest.approx(masked_flat)


@pytest.mark.parametrize("modality", MODALITIES)
def test_prediction_carries_label_probabilities_flag_and_heatmap(modality, registry):
    prediction = registry.get(modality).predict(sample_image(modality), heatmap=True)
    assert prediction.label in SPECS[modality].class_names
    assert set(prediction.probabilities) == set(SPECS[modality].class_names)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.confidence == max(prediction.probabilities.values())
    positive_probability = sum(prediction.probabilities[c] for c in SPECS[modality].positive_classes)
    assert prediction.positive_probability == pytest.approx(positive_probability)
    threshold = registry.get(modality).decision.positive_threshold
    if threshold is None:
        assert prediction.is_positive == (prediction.label in SPECS[modality].positive_classes)
    else:
        assert prediction.is_positive == (positive_probability >= threshold)
    assert prediction.positive_flag in ("is_malignant", "is_abnormal")
    activation_map = prediction.activation_map
    assert activation_map.resize_mode == registry.get(modality).spec.resize_mode
    assert activation_map.grid.dtype == np.float16 and float(activation_map.grid.max()) == pytest.approx(1.0, abs=1e-3)
    kept = ActivationMap.from_bytes(activation_map.to_bytes())
    assert len(activation_map.to_bytes()) < 200 and kept.resize_mode == activation_map.resize_mode
    np.testing.assert_array_equal(kept.grid, activation_map.grid)
    with Image.open(sample_image(modality)) as photo:
        heatmap = Image.open(io.BytesIO(kept.render(photo)))
        assert heatmap.format == "PNG" and heatmap.mode == "RGB" and heatmap.size == photo.size


@pytest.mark.parametrize("modality", MODALITIES)
def test_a_batch_gives_each_image_the_answer_it_gets_alone(modality, registry):
    runner = registry.get(modality)
    paths = sample_images(modality)
    batch = runner.predict_batch([*paths, *reversed(paths)], heatmap=True)
    alone = [runner.predict(path, heatmap=True) for path in paths]
    assert len(batch) == 2 * len(paths) > 2
    for batched, single in zip(batch, [*alone, *reversed(alone)], strict=True):
        assert batched.probabilities == single.probabilities  # bit for bit, not approximately
        assert (batched.label, batched.confidence, batched.is_positive) == (
            single.label,
            single.confidence,
            single.is_positive,
        )
        assert batched.positive_probability == single.positive_probability
        assert (batched.prediction_set, batched.set_coverage, batched.certainty) == (
            single.prediction_set,
            single.set_coverage,
            single.certainty,
        )
        assert batched.activation_map.to_bytes() == single.activation_map.to_bytes()
    assert runner.predict_batch([]) == []


def test_heatmap_is_warm_where_the_map_peaks_and_fits_a_letterboxed_image():
    grid = np.zeros((5, 5), dtype=np.float32)
    grid[2, 2] = 1.0  # the middle of the square input
    photo = Image.new("L", (300, 100), 128)  # letterboxed: the middle of the input is the middle of the photo
    heatmap = Image.open(io.BytesIO(ActivationMap.of(grid, "pad").render(photo)))
    assert heatmap.size == (300, 100)
    red, _green, blue = heatmap.getpixel((150, 50))  # jet's top: red
    assert red > 2 * blue
    red, _green, blue = heatmap.getpixel((5, 5))  # jet's bottom: blue
    assert blue > red


def test_runner_is_safe_under_threads(registry):
    runner = registry.get("chest_xray")
    paths = sample_images("chest_xray")
    serial = [runner.predict(p).probabilities for p in paths]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda p: runner.predict(p).probabilities, paths * 4))
    assert threaded == serial * 4


def test_serving_path_never_imports_tensorflow():
    code = (
        "import sys; from cnn_model.runtime import ModelRegistry; r = ModelRegistry(); "
        "from PIL import Image; r.get('skin_lesion').predict(Image.new('RGB', (200, 150)), heatmap=True); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
