"""Occlusion check of the shipped chest X-ray model: does it need the lungs, or the neck and frame?

Why: heatmap_check found the normal films' activation maps peaking at the top centre (thoracic inlet,
neck), a hint that the model may read acquisition cues rather than the lungs. This check hides parts
of each val/ film before inference and sees what the predictions and maps do. It is inference only:
the shipped model never saw occluded films in training, so a drop can also mean "out of distribution";
a model trained with such masking is the proper next test.

Occlusion is applied to the model's preprocessed input (preprocess_for_model: the film stretched to the
square input), with the image's own mean grey. Mean grey rather than a blur: a 5x5-cell model reads
coarse layout, and a blur keeps exactly that (shoulder and neck outline, bright markers as blobs), so
it would hide less of the cues in question; a flat fill at the image's mean keeps its overall brightness.

Conditions (boxes as in heatmap_check, fractions of the square, x right, y down): none; the neck/top
strip (y < 0.15); the outer 8 % frame; everything outside the thorax box (x 0.10-0.90, y 0.12-0.85);
the two lung boxes (the contrary control). For each: accuracy, balanced accuracy, pneumonia
sensitivity and specificity at the card's decision rule, the CAM's mass shares (recomputed on the
occluded input), and the predictions that flipped against no occlusion. Also the val films split by
file-name series (IM-, NORMAL2-IM-, person..._bacteria, person..._virus).

    python -m cnn_model.training.occlusion_check [--limit N] [--out DIR]

Writes occlusion.json and chest_occlusion.png (the conditions on a few films) under --out.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..modalities import chest_xray
from ..preprocessing import preprocess_for_model
from ..runtime import ARTIFACTS_DIR, ActivationMap, ModelRunner
from ..specs import Region
from .heatmap_check import (
    DEFAULT_DATA_ROOT,
    DEFAULT_OUT,
    area_shares,
    region_mask,
    region_shares,
    sample_images,
    save_small_png,
    spread,
    upsample,
)

MODALITY = chest_xray.NAME
(POSITIVE,) = chest_xray.SPEC.positive_classes
CHEST_REGIONS = chest_xray.SPEC.heatmap_regions.regions
THORAX_BOX = chest_xray.THORAX_BOX  # drawn on the unoccluded films
# Occluded regions; "outside_thorax" is the complement of THORAX_BOX as four boxes.
OCCLUSIONS = chest_xray.SPEC.heatmap_regions.occlusions
SERIES_PATTERNS = (  # file-name series of the Kermany/Kaggle chest set, most specific first
    ("NORMAL2-IM", re.compile(r"^NORMAL2-IM-")),
    ("IM", re.compile(r"^IM-")),
    ("person_bacteria", re.compile(r"^person\d+_bacteria_")),
    ("person_virus", re.compile(r"^person\d+_virus_")),
)
SHEET_FILMS = 4  # per class on the picture of the conditions
SHEET_TILE = 128


def occlude(image: np.ndarray, mask: np.ndarray, fill: float) -> np.ndarray:
    """A copy of image (H, W) or (H, W, C) with the pixels where mask (H, W) is True set to fill."""
    occluded = np.array(image, copy=True)
    occluded[mask] = fill
    return occluded


def occluded_input(image: np.ndarray, region: Region | None) -> np.ndarray:
    """The preprocessed image with the region filled with the image's mean grey (unchanged for None)."""
    if region is None:
        return image
    return occlude(image, region_mask(region, image.shape[0]), float(image.mean()))


def file_series(name: str) -> str:
    return next((series for series, pattern in SERIES_PATTERNS if pattern.match(name)), "other")


@dataclass
class Outcome:
    positive: bool  # the card's decision rule
    top1: str
    shares: dict[str, float]  # CAM mass shares in CHEST_REGIONS, and in the occluded region as "occluded"


def evaluate(runner: ModelRunner, image: np.ndarray, region: Region | None) -> Outcome:
    x = occluded_input(image, region)
    probabilities, cams = runner.run(x[None], with_cams=True)
    top = int(probabilities[0].argmax())
    grid = ActivationMap.of(cams[0][:, :, top], runner.spec.resize_mode).grid.astype(np.float32)
    heat = upsample(grid, runner.spec.input_size)
    shares = region_shares(heat, CHEST_REGIONS)
    if region is not None:
        shares["occluded"] = region_shares(heat, {"occluded": region})["occluded"]
    return Outcome(bool(runner.decision.positive(probabilities, runner.spec)[0]), runner.spec.class_names[top], shares)


def rates(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, sensitivity and specificity for boolean positives."""
    sensitivity = float(predicted[truth].mean()) if truth.any() else float("nan")
    specificity = float((~predicted[~truth]).mean()) if (~truth).any() else float("nan")
    return {
        "accuracy": round(float((truth == predicted).mean()), 4),
        "balanced_accuracy": round((sensitivity + specificity) / 2, 4),
        "sensitivity": round(sensitivity, 4),
        "specificity": round(specificity, 4),
        "errors": int((truth != predicted).sum()),
    }


def mcnemar_p(lost: int, gained: int) -> float:
    """Exact two-sided McNemar p-value for paired correct/wrong changes (binomial on the discordant pairs)."""
    n = lost + gained
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(lost, gained) + 1)) / 2**n
    return min(1.0, 2 * tail)


def condition_report(truth: np.ndarray, outcomes: list[Outcome], baseline: list[Outcome], class_names) -> dict:
    predicted = np.array([o.positive for o in outcomes])
    before = np.array([o.positive for o in baseline])
    report = rates(truth, predicted)
    report["top1_accuracy"] = round(
        float(np.mean([o.top1 == c for o, c in zip(outcomes, class_names, strict=True)])), 4
    )
    flips = {"normal_to_pneumonia": ~before & predicted, "pneumonia_to_normal": before & ~predicted}
    report["flipped"] = {name: int(flipped.sum()) for name, flipped in flips.items()}
    report["flipped_by_true_class"] = {
        name: {"true_normal": int((flipped & ~truth).sum()), "true_pneumonia": int((flipped & truth).sum())}
        for name, flipped in flips.items()
    }
    lost = int(((before == truth) & (predicted != truth)).sum())
    gained = int(((before != truth) & (predicted == truth)).sum())
    report["against_none"] = {
        "correct_to_wrong": lost,
        "wrong_to_correct": gained,
        "mcnemar_p": round(mcnemar_p(lost, gained), 6),
    }
    shares = {name: np.array([o.shares[name] for o in outcomes]) for name in outcomes[0].shares}
    groups = {"all": np.ones_like(truth), "true_normal": ~truth, "true_pneumonia": truth}
    report["cam_share_mean"] = {
        group: {name: round(float(np.nanmean(values[chosen])), 4) for name, values in shares.items()}
        for group, chosen in groups.items()
    }
    return report


def series_report(series: list[str], truth: np.ndarray, outcomes_by_condition: dict[str, list[Outcome]]) -> dict:
    """Per file-name series: counts per class and the accuracy under each condition."""
    report = {}
    for name in dict.fromkeys(sorted(series)):
        chosen = np.array([s == name for s in series])
        entry = {
            "n": int(chosen.sum()),
            "normal": int((chosen & ~truth).sum()),
            "pneumonia": int((chosen & truth).sum()),
        }
        for condition, outcomes in outcomes_by_condition.items():
            predicted = np.array([o.positive for o in outcomes])
            entry[f"accuracy_{condition}"] = round(float((predicted[chosen] == truth[chosen]).mean()), 4)
        report[name] = entry
    return report


def conditions_sheet(images: list[np.ndarray]) -> Image.Image:
    """One row per film, one column per condition, the thorax box drawn on the unoccluded column."""
    sheet = Image.new("L", (len(OCCLUSIONS) * SHEET_TILE, len(images) * SHEET_TILE), 255)
    for row, image in enumerate(images):
        for column, region in enumerate(OCCLUSIONS.values()):
            tile = Image.fromarray(occluded_input(image, region)[:, :, 0].astype(np.uint8), mode="L")
            tile = tile.resize((SHEET_TILE, SHEET_TILE), Image.Resampling.BILINEAR)
            if region is None:
                x0, y0, x1, y1 = (v * SHEET_TILE for v in THORAX_BOX)
                ImageDraw.Draw(tile).rectangle([x0, y0, x1 - 1, y1 - 1], outline=255)
            sheet.paste(tile, (column * SHEET_TILE, row * SHEET_TILE))
    return sheet


def run(data_root: Path, out: Path, limit: int | None, artifacts_dir: Path) -> dict:
    runner = ModelRunner(artifacts_dir / MODALITY)
    samples = sample_images(data_root, MODALITY, limit)
    images = [preprocess_for_model(s.path, runner.spec) for s in samples]
    truth = np.array([s.label == POSITIVE for s in samples])
    labels = [s.label for s in samples]
    outcomes = {name: [evaluate(runner, image, region) for image in images] for name, region in OCCLUSIONS.items()}
    side = runner.spec.input_size
    report = {
        "model_version": runner.version,
        "data": f"{MODALITY} val/",
        "n": len(samples),
        "n_normal": int((~truth).sum()),
        "n_pneumonia": int(truth.sum()),
        "decision_rule": runner.decision.describe(),
        "fill": "the preprocessed image's mean grey",
        "occlusions": {
            name: None
            if r is None
            else {"boxes": r.boxes, "frame": r.frame, "area": round(float(region_mask(r, side).mean()), 4)}
            for name, r in OCCLUSIONS.items()
        },
        "region_area_share": {k: round(v, 4) for k, v in area_shares(CHEST_REGIONS, side).items()},
        "conditions": {
            name: condition_report(truth, result, outcomes["none"], labels) for name, result in outcomes.items()
        },
        "series": series_report([file_series(s.path.name) for s in samples], truth, outcomes),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "occlusion.json").write_text(json.dumps(report, indent=1) + "\n")
    films = [
        i
        for label in (False, True)
        for i in np.flatnonzero(truth == label)[spread(int((truth == label).sum()), SHEET_FILMS)]
    ]
    save_small_png(conditions_sheet([images[i] for i in films]).convert("RGB"), out / "chest_occlusion.png")
    for name, condition in report["conditions"].items():
        print(
            f"{name:15s} acc {condition['accuracy']:.3f} bal {condition['balanced_accuracy']:.3f} "
            f"sens {condition['sensitivity']:.3f} spec {condition['specificity']:.3f} flips {condition['flipped']}"
        )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="at most this many val images per class, spread evenly")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS_DIR)
    args = parser.parse_args(argv)
    run(args.data_root, args.out, args.limit, args.artifacts)


if __name__ == "__main__":
    main()
