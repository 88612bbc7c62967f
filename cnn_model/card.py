"""Score an exported artifact and write what its model card says about it (no TensorFlow).

Export calls this after writing the model file; `python -m cnn_model rescore` calls it again
for a shipped artifact when the decision rule or the evaluation changes, leaving the model
file (and its sha256) as it is.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .data import list_class_folder, split_test_slice
from .decision import DecisionPolicy, derive_decision
from .evaluation import evaluate_runner, write_plots
from .preprocessing import load_image, preprocess_for_model
from .runtime import CARD_FILE, ModelRunner
from .specs import ModalitySpec

LATENCY_IMAGES = 40


def score_artifact(
    artifact_dir: Path, *, data_root: Path, bootstrap_rounds: int = 1000, measure_latency: bool = True
) -> dict:
    """Derive the decision rule on val, evaluate val and the test slice, write metrics and plots."""
    artifact_dir = Path(artifact_dir)
    card_path = artifact_dir / CARD_FILE
    card = json.loads(card_path.read_text())
    runner = ModelRunner(artifact_dir)
    runner.decision = DecisionPolicy()  # the rule is derived from the network's own probabilities
    spec = runner.spec
    dataset_dir = Path(data_root) / spec.name
    _, test_samples = split_test_slice(list_class_folder(dataset_dir / "train", spec))
    if not any(card["training"]["data"]["counts"]["test_slice"].values()):
        test_samples = []  # refit on all of train/: the slice is training data now
    val_samples = list_class_folder(dataset_dir / "val", spec)

    network_val = np.concatenate([runner.run(preprocess_for_model(s.path, spec)[None])[0] for s in val_samples])
    y_val = np.array([spec.class_names.index(s.label) for s in val_samples])
    card.pop("decision", None)
    decision = derive_decision(spec, card["training"], network_val, y_val)
    if decision:
        card["decision"] = decision
    runner.decision = DecisionPolicy.from_card(card, spec)

    evaluations = {
        "val": evaluate_runner(
            runner, val_samples, bootstrap_rounds=bootstrap_rounds, probabilities=runner.decision.adjust(network_val)
        )
    }
    if test_samples:
        evaluations["test slice"] = evaluate_runner(runner, test_samples, bootstrap_rounds=bootstrap_rounds)
    card["metrics"] = {split.replace(" ", "_"): result["metrics"] for split, result in evaluations.items()}
    card["plots"] = write_plots(artifact_dir, spec, evaluations)
    if measure_latency or "median_ms_one_thread" not in card["serving"]:
        card["serving"]["median_ms_one_thread"] = median_latency_ms(runner, val_samples[:LATENCY_IMAGES])
    card["targets"] = asdict(spec.targets)
    card["limitations"] = limitations(spec, card["metrics"])
    write_card(card_path, card)
    return card


def limitations(spec: ModalitySpec, metrics: dict) -> str:
    """Every figure below its target, then the data caveats.

    Where the card reports accuracy_at_prevalence, that is what the accuracy target is held to:
    plain accuracy on a rebalanced split measures a population the service never sees.
    """
    shortfalls = []
    for split, figures in metrics.items():
        for name, target in asdict(spec.targets).items():
            measured_name = (
                "accuracy_at_prevalence" if name == "accuracy" and "accuracy_at_prevalence" in figures else name
            )
            value = figures.get(measured_name)
            if value is not None and value < target:
                shortfalls.append(
                    f"{measured_name.replace('_', ' ')} {value:.3f} on {split.replace('_', ' ')} (target {target:.2f})"
                )
    verdict = (
        "Below the project's quality targets: " + "; ".join(shortfalls) + "."
        if shortfalls
        else "At or above the project's quality targets on val and the test slice."
    )
    return f"{verdict} {spec.data_caveats}"


def median_latency_ms(runner: ModelRunner, samples) -> float:
    """Median ms per image, decoding excluded, preprocessing and inference included, one thread."""
    images = [load_image(s.path) for s in samples]
    timings = []
    for image in images * 3:
        start = time.perf_counter()
        runner.run(preprocess_for_model(image, runner.spec)[None])
        timings.append((time.perf_counter() - start) * 1000)
    return round(float(np.median(timings)), 2)


def write_card(path: Path, card: dict) -> None:
    path.write_text(json.dumps(card, indent=2) + "\n")
