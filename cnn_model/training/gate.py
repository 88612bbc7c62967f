"""Build, fit and check the modality gate: `python -m cnn_model.training train-gate`.

1. The feature network: the pretrained EfficientNet-Lite0 cut after block 4 (`block4c_add`), at
   96 px, with the mean and the max of each of its 80 channels: 160 numbers per image. Exported to
   LiteRT with float16 weights and checked against Keras on real images.
2. Every labelled image of every modality (train/ + val/) is described by the exported file, through
   the same preprocessing function and runtime that serve it.
3. Grouped 5-fold cross-validation on the committed folds (cv/<modality>/folds.json, the folds the
   models are chosen on): in each fold the statistics are fitted on the four other folds, their
   thresholds set by cross-fitting inside those four, and the held-out fold is scored. That gives
   the held-out figures of the card.
4. The shipped statistics are fitted on all images, thresholds cross-fitted over the five folds,
   and checked on the foreign images of cnn_model.foreign.
5. The near-domain boundary (1.1.0; 1.2.0 adds generated fundus-like pictures to its fit part): one
   more Gaussian fitted on the close-ups of the *fit* part of near_domain.py, and per modality a cut-off
   on d_m² − d_foreign², the CUTOFF_PERCENTILE of that score on the modality's own images, cross-fitted
   over the same folds as the thresholds (and nested inside the cross-validation of 3). The *held-out*
   close-ups are only scored, for the card.

`--keep-network` fits the statistics on the features of the feature network already exported in the
artifacts folder (model.tflite unchanged, its export check kept from the card) instead of rebuilding it.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..card import CARD_FILE, MODEL_FILE, ArtifactError, GateCard
from ..gate import (
    GATE_DIR_NAME,
    GATE_INPUT_SIZE,
    STATS_FILE,
    FeatureNetwork,
    ForeignBoundary,
    GateStatistics,
    ModalityGate,
    preprocess_for_gate,
)
from ..modalities import MODALITIES
from .crossval.folds import labelled_samples, load_folds
from .foreign import foreign_images
from .near_domain import FIT, HELD_OUT, SOURCES, check_near_domain, near_domain_images

FEATURE_LAYER = "block4c_add"
# Ledoit-Wolf-style shrinkage toward a scaled identity: the smallest sets (cervical, breast) have a few
# hundred images for a 160 x 160 covariance.
SHRINKAGE = 0.05
# A modality's threshold: this percentile of its images' held-out distances. Chosen on the cross-validated
# figures (99.0 and 99.5 refused 0.6-1.4% of real images; foreign images were refused at all three).
THRESHOLD_PERCENTILE = 99.9
# The near-domain boundary's cut-off per modality: this percentile of d_m² − d_foreign² on the modality's own
# images (cross-fitted). 99.9 refused 13 real images of 9,053 at nested CV, 99.95 refused 11; 1.0.0 refused 10.
CUTOFF_PERCENTILE = 99.95
VERSION = "1.2.0"
LATENCY_IMAGES = 50


def build_feature_network(backbone_path: Path):
    """Keras: image (96 x 96 x 3, 0..255) -> [mean, max] of the block-4 feature channels."""
    import keras

    backbone = keras.models.load_model(backbone_path)
    cut = keras.Model(backbone.input, backbone.get_layer(FEATURE_LAYER).output)
    inputs = keras.Input((GATE_INPUT_SIZE, GATE_INPUT_SIZE, 3))
    features = cut(inputs, training=False)
    pooled = keras.layers.Concatenate()(
        [keras.layers.GlobalAveragePooling2D()(features), keras.layers.GlobalMaxPooling2D()(features)]
    )
    return keras.Model(inputs, pooled, name="modality_gate_features")


def export_feature_network(network, out_path: Path, check_images: np.ndarray) -> dict:
    """Write the LiteRT file (float16 weights) and report how far its features are from Keras'."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(network)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    out_path.write_bytes(converter.convert())
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=out_path.read_bytes())
    interpreter.allocate_tensors()
    keras_features = network.predict(check_images, verbose=0)
    lite = []
    for x in check_images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[None])
        interpreter.invoke()
        lite.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    difference = np.abs(np.stack(lite) - keras_features)
    scale = np.abs(keras_features).mean()
    return {"images": len(check_images), "max_abs_difference_relative": round(float(difference.max() / scale), 5)}


def fit_modality(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and whitening matrix (Cholesky factor of the shrunk inverse covariance) of one modality."""
    mean = features.mean(axis=0)
    covariance = np.cov(features, rowvar=False)
    dims = covariance.shape[0]
    covariance = (1 - SHRINKAGE) * covariance + SHRINKAGE * np.trace(covariance) / dims * np.eye(dims)
    return mean, np.linalg.cholesky(np.linalg.inv(covariance))


def _distance(features: np.ndarray, mean: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    return np.sqrt(np.square((features - mean) @ whitening).sum(axis=1))


def fit_statistics(
    features: dict[str, np.ndarray], folds: dict[str, np.ndarray], foreign_features: np.ndarray | None = None
) -> GateStatistics:
    """Fit every modality on all its given images; thresholds from cross-fitted distances over the given folds.

    With foreign_features (the near-domain fit close-ups), also the foreign Gaussian and per modality the
    cut-off on d_m² − d_foreign², from the same cross-fitted distances d_m.
    """
    modalities = tuple(features)
    foreign_mean = foreign_whitening = None
    if foreign_features is not None:
        foreign_mean, foreign_whitening = fit_modality(foreign_features)
    means, whitenings, thresholds, held_out, cutoffs = [], [], [], [], []
    for modality in modalities:
        x, fold = features[modality], folds[modality]
        distances = np.empty(len(x))
        for k in np.unique(fold):
            mean, whitening = fit_modality(x[fold != k])
            distances[fold == k] = _distance(x[fold == k], mean, whitening)
        mean, whitening = fit_modality(x)
        means.append(mean)
        whitenings.append(whitening)
        thresholds.append(np.percentile(distances, THRESHOLD_PERCENTILE))
        held_out.append(np.sort(distances))
        if foreign_features is not None:
            ratio = np.square(distances) - np.square(_distance(x, foreign_mean, foreign_whitening))
            cutoffs.append(np.percentile(ratio, CUTOFF_PERCENTILE))
    return GateStatistics(
        modalities=modalities,
        means=np.stack(means),
        whitening=np.stack(whitenings),
        thresholds=np.array(thresholds),
        held_out_distances=tuple(held_out),
        foreign=None
        if foreign_features is None
        else ForeignBoundary(mean=foreign_mean, whitening=foreign_whitening, cutoffs=np.array(cutoffs)),
    )


def score_decisions(statistics: GateStatistics, features: dict[str, np.ndarray]) -> dict:
    """Per true modality: how many images were given the right modality, another one, or refused."""
    out = {}
    for modality, x in features.items():
        decided = statistics.decide_features(x)
        right = sum(d == modality for d in decided)
        refused = sum(d is None for d in decided)
        out[modality] = {"images": len(x), "right": right, "refused": refused, "wrong": len(x) - right - refused}
    return out


def _rates(counts: dict) -> dict:
    images = sum(c["images"] for c in counts.values())
    return {key: round(sum(c[key] for c in counts.values()) / images, 5) for key in ("right", "refused", "wrong")}


def cross_validate(
    features: dict[str, np.ndarray], folds: dict[str, np.ndarray], foreign_features: np.ndarray | None = None
) -> dict:
    """Grouped 5-fold figures: fit on four folds (thresholds and cut-offs cross-fitted inside them), score the fifth.

    The foreign Gaussian is fitted on all of foreign_features in every fold: none of them is a real image.
    """
    per_fold, pooled = [], {m: {"images": 0, "right": 0, "refused": 0, "wrong": 0} for m in features}
    for k in sorted(set(np.concatenate(list(folds.values())).tolist())):
        train = {m: x[folds[m] != k] for m, x in features.items()}
        statistics = fit_statistics(train, {m: f[f != k] for m, f in folds.items()}, foreign_features)
        counts = score_decisions(statistics, {m: x[folds[m] == k] for m, x in features.items()})
        per_fold.append(_rates(counts))
        for m, c in counts.items():
            for key, value in c.items():
                pooled[m][key] += value
    summary = {
        key: {
            "mean": round(float(np.mean([f[key] for f in per_fold])), 5),
            "sd": round(float(np.std([f[key] for f in per_fold], ddof=1)), 5),
        }
        for key in ("right", "refused", "wrong")
    }
    return {"per_fold": per_fold, "mean_sd": summary, "pooled": _rates(pooled), "pooled_per_modality": pooled}


def check_foreign(gate: ModalityGate, extra_folders: tuple[Path, ...] = ()) -> dict:
    """How many foreign images the gate refuses, by kind, with any it let through named."""
    by_kind: dict[str, dict] = {}
    accepted = []
    for kind, name, image in foreign_images(extra_folders):
        result = gate.detect(image)
        entry = by_kind.setdefault(kind, {"images": 0, "refused": 0})
        entry["images"] += 1
        entry["refused"] += result.modality is None
        if result.modality is not None:
            accepted.append({"kind": kind, "name": name, "taken_for": result.modality})
    images = sum(e["images"] for e in by_kind.values())
    refused = sum(e["refused"] for e in by_kind.values())
    return {
        "images": images,
        "refused": refused,
        "refused_share": round(refused / images, 4),
        "by_kind": by_kind,
        "accepted": accepted,
    }


def measure_latency(gate: ModalityGate, sources: list[Path]) -> dict:
    """Median and p95 ms of detect() on decoded images (preprocessing included, decoding not)."""
    from ..preprocessing import load_image

    images = [load_image(p) for p in sources]
    for image in images[:5]:
        gate.detect(image)
    timings = []
    for image in images:
        start = time.perf_counter()
        gate.detect(image)
        timings.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms_one_thread": round(float(np.median(timings)), 3),
        "p95_ms_one_thread": round(float(np.percentile(timings, 95)), 3),
        "images": len(images),
    }


def train_gate(
    *,
    data_root: Path,
    backbone: Path,
    artifacts_dir: Path,
    foreign_folders: tuple[Path, ...] = (),
    keep_network: bool = False,
) -> dict:
    """Export the feature network (or keep the exported one), fit and cross-validate the statistics, write the gate."""
    out_dir = Path(artifacts_dir) / GATE_DIR_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    samples = {m: labelled_samples(m, data_root) for m in MODALITIES}
    folds = {m: np.array(load_folds(m, s)) for m, s in samples.items()}

    if keep_network:
        if not (out_dir / MODEL_FILE).is_file() or not (out_dir / CARD_FILE).is_file():
            raise ArtifactError(f"{out_dir}: --keep-network needs the exported {MODEL_FILE} and its {CARD_FILE}")
        export_check = GateCard.load(out_dir / CARD_FILE).export_check
        print(f"kept {out_dir / MODEL_FILE} (export check {export_check})", flush=True)
    else:
        network = build_feature_network(backbone)
        check = np.stack(
            [preprocess_for_gate(s.path) for m in MODALITIES for s in samples[m][:: max(1, len(samples[m]) // 25)]]
        )
        export_check = export_feature_network(network, out_dir / MODEL_FILE, check)
        print(f"exported {out_dir / MODEL_FILE}: {export_check}", flush=True)

    network_lite = FeatureNetwork((out_dir / MODEL_FILE).read_bytes())
    features = {}
    for modality in MODALITIES:
        features[modality] = _describe(network_lite, [s.path for s in samples[modality]])
        print(f"{modality}: {len(features[modality])} images described", flush=True)
    near_domain_fit = _describe(network_lite, [image for _kind, _name, image in near_domain_images(FIT)])
    print(f"near-domain fit part: {len(near_domain_fit)} close-ups described", flush=True)

    cv = cross_validate(features, folds, near_domain_fit)
    print(f"grouped 5-fold: {cv['mean_sd']} pooled {cv['pooled']}", flush=True)
    fit_statistics(features, folds, near_domain_fit).save(out_dir / STATS_FILE)

    card = {
        "name": "medsight-modality-gate",
        "version": VERSION,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "modalities": list(MODALITIES),
        "input": {"size": GATE_INPUT_SIZE, "color_mode": "RGB", "resize_mode": "stretch"},
        "method": (
            f"EfficientNet-Lite0 (ImageNet-1k) cut after {FEATURE_LAYER}, mean and max of each channel (160 numbers); "
            f"per modality a mean and a covariance shrunk {SHRINKAGE:.0%} toward a scaled identity; an image is of "
            "the modality it is nearest to by Mahalanobis distance relative to that modality's threshold, and of "
            f"none when beyond every threshold. Thresholds: the {THRESHOLD_PERCENTILE}th percentile of the "
            "modality's own held-out distances (cross-fitted over the grouped folds); no foreign image set them. "
            "Near-domain boundary: one more Gaussian (the same shrinkage) fitted on the close-ups of the fit part of "
            "cnn_model/training/near_domain.py; an image given to modality m is refused when d_m^2 - d_foreign^2 "
            f"exceeds m's cut-off, the {CUTOFF_PERCENTILE}th percentile of that score on m's own images "
            "(cross-fitted over the grouped folds)."
        ),
        "score": (
            "Per modality, the share of that modality's own held-out images that lie at least as far from it as "
            "this image (1: typical, 0: farther than any seen)."
        ),
        "data": {
            "source": "shared/datasets/<modality>/train and val, every labelled image",
            "images": {m: len(x) for m, x in features.items()},
            "folds": "model_runs/<modality>/folds.json (whole lesions, patients, smears, near-duplicate groups)",
            "near_domain_fit": {
                "images": len(near_domain_fit),
                "sources": [source.name for source in SOURCES if source.part == FIT],
            },
        },
        "metrics": {"grouped_5_fold": cv, "foreign": None, "near_domain_held_out": None},
        "export_check": export_check,
        "serving": {},
        "artifact": {"sha256": {}},
        "training_seconds": round(time.time() - started, 1),  # so far; the final figure is written below
    }
    _write_card(out_dir, card)
    gate = ModalityGate(out_dir)
    card["metrics"]["foreign"] = check_foreign(gate, foreign_folders)
    print(
        f"foreign: {card['metrics']['foreign']['refused']}/{card['metrics']['foreign']['images']} refused", flush=True
    )
    card["metrics"]["near_domain_held_out"] = check_near_domain(gate, HELD_OUT)
    near = card["metrics"]["near_domain_held_out"]
    refused_by_source = {name: f"{e['refused']}/{e['images']}" for name, e in near["by_source"].items()}
    print(f"near-domain held out: {near['refused']}/{near['images']} refused, {refused_by_source}", flush=True)
    latency_sources = [s.path for m in MODALITIES for s in samples[m][:: max(1, len(samples[m]) // 12)]][
        :LATENCY_IMAGES
    ]
    card["serving"] = measure_latency(gate, latency_sources)
    card["serving"]["size_mb"] = round(sum((out_dir / f).stat().st_size for f in (MODEL_FILE, STATS_FILE)) / 1e6, 3)
    card["training_seconds"] = round(time.time() - started, 1)
    _write_card(out_dir, card)
    return card


def _describe(network: FeatureNetwork, sources: list, batch: int = 64) -> np.ndarray:
    """(N, D) descriptions of the sources by the exported network, through the serving preprocessing."""
    return np.concatenate(
        [
            network.features(np.stack([preprocess_for_gate(s) for s in sources[i : i + batch]]))
            for i in range(0, len(sources), batch)
        ]
    )


def _write_card(out_dir: Path, card: dict) -> None:
    card["artifact"]["sha256"] = {
        name: hashlib.sha256((out_dir / name).read_bytes()).hexdigest()
        for name in (MODEL_FILE, STATS_FILE)
        if (out_dir / name).is_file()
    }
    GateCard.from_json(card).save(out_dir / CARD_FILE)
