"""Fit each modality's capture-quality limits on its training images and check them on val/.

    python -m cnn_model.training.quality_fit --data ../shared/datasets [--modality chest_xray] [--out DIR]

Limits are quantiles of the measures over train/ (QUANTILE from each side that matters), so about
that share of good training images fails each one; val/ (never used to fit) reports how many clean
images would be refused, and how many of them are refused once severely degraded: blurred, made
dark, overexposed, washed out, or shrunk below the size limit. Everything goes into the
modality's quality.json beside its model.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ..card import ARTIFACTS_DIR
from ..modalities import MODALITIES
from ..preprocessing import load_image
from ..quality import QUALITY_FILE, Capture, QualityLimits, measure

QUANTILE = 0.001
# Extreme quantiles of a few hundred images are noisy: each limit sits this share further out than its quantile.
MARGIN = 0.15
# Sharpness gets a larger budget, taken at the quantile itself: the labelled sets hold some out-of-focus photos
# (HAM10000 does), and a limit below all of them would let most blurred pictures through.
SHARPNESS_QUANTILE = 0.005
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# Severe, not subtle: a retake is what these should ask for. Blur: a Gaussian of 1/40 of the shorter side.
EXPOSURE_FACTOR = 0.15


def _blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=max(2.0, min(image.size) / 40)))


def _dark(image: Image.Image) -> Image.Image:
    return image.point(lambda v: v * EXPOSURE_FACTOR)


def _overexposed(image: Image.Image) -> Image.Image:
    return image.point(lambda v: 255 - (255 - v) * EXPOSURE_FACTOR)


def _washed_out(image: Image.Image) -> Image.Image:
    mean = float(np.asarray(image.convert("L")).mean())
    return image.point(lambda v: mean + (v - mean) * EXPOSURE_FACTOR)


DEGRADATIONS: dict[str, tuple[str, Callable[[Image.Image], Image.Image]]] = {
    "blurred": ("blurry", _blurred),
    "dark": ("too_dark", _dark),
    "overexposed": ("too_bright", _overexposed),
    "washed_out": ("low_contrast", _washed_out),
}


def image_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def fit_limits(captures: list[Capture]) -> QualityLimits:
    """Limits MARGIN beyond QUANTILE of each measure over good images (the size limit: half the smallest usual
    side; the brightness ceiling: MARGIN of the way from the quantile to white; sharpness: SHARPNESS_QUANTILE)."""

    def low(values: Iterable[float]) -> float:
        return float(np.quantile(list(values), QUANTILE)) * (1.0 - MARGIN)

    def high(values: Iterable[float]) -> float:
        quantile = float(np.quantile(list(values), 1.0 - QUANTILE))
        return quantile + (255.0 - quantile) * MARGIN

    return QualityLimits(
        min_short_side=max(16, math.floor(np.quantile([c.short_side for c in captures], QUANTILE) / 2)),
        min_brightness=round(low(c.brightness for c in captures), 2),
        max_brightness=round(high(c.brightness for c in captures), 2),
        min_contrast=round(low(c.contrast for c in captures), 2),
        min_sharpness=round(float(np.quantile([c.sharpness for c in captures], SHARPNESS_QUANTILE)), 4),
    )


def _refused_share(limits: QualityLimits, images: list[Image.Image], change=None, reason: str | None = None) -> dict:
    refused = right = 0
    for image in images:
        problem = limits.problem(measure(change(image) if change else image))
        refused += problem is not None
        right += problem == reason
    count = max(len(images), 1)
    figures = {"images": len(images), "refused": round(refused / count, 4)}
    if reason is not None:
        figures["refused_as_" + reason] = round(right / count, 4)
    return figures


def _shrunk(limits: QualityLimits) -> Callable[[Image.Image], Image.Image]:
    def shrink(image: Image.Image) -> Image.Image:
        scale = (limits.min_short_side - 1) / min(image.size)
        return image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))

    return shrink


def fit_modality(data: Path, modality: str) -> dict:
    train = [measure(load_image(path)) for path in image_paths(data / modality / "train")]
    limits = fit_limits(train)
    val_images = [load_image(path) for path in image_paths(data / modality / "val")]
    degraded = {
        name: _refused_share(limits, val_images, change, reason) for name, (reason, change) in DEGRADATIONS.items()
    }
    degraded["too_small"] = _refused_share(limits, val_images, _shrunk(limits), "too_small")
    return {
        "modality": modality,
        "limits": limits.to_json(),
        "fitted_on": (
            f"train/ ({len(train)} images): quantile {QUANTILE} of each measure, {MARGIN:.0%} further out; "
            f"sharpness at quantile {SHARPNESS_QUANTILE}"
        ),
        "refused_clean": {
            "train": round(sum(limits.problem(c) is not None for c in train) / len(train), 4),
            "val": _refused_share(limits, val_images)["refused"],
        },
        "refused_degraded_val": degraded,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the datasets folder (one folder per modality)")
    parser.add_argument("--modality", choices=list(MODALITIES), action="append")
    parser.add_argument("--out", type=Path, default=ARTIFACTS_DIR)
    args = parser.parse_args(argv)
    for modality in args.modality or list(MODALITIES):
        report = fit_modality(args.data, modality)
        (args.out / modality / QUALITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report))


if __name__ == "__main__":
    main()
