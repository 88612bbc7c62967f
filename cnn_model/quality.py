"""Capture quality: whether an image is sharp, exposed and large enough for its modality's model to read.

A blurred, dark, overexposed or washed-out picture is classified by a CNN with the same confidence
as a good one; it should be retaken instead. Four measures, on the image's luminance at a working
size (its shorter side at most WORKING_SIDE, near the size the models read and the labelled sets'
smallest, so that a measure means the same for a 600-pixel photo and a 150-pixel training image):

- brightness: mean luminance, 0..255;
- contrast: standard deviation of luminance;
- sharpness: standard deviation of the Laplacian divided by the contrast, so that exposure does
  not pass for focus (a dim, sharp image keeps its sharpness; a blurred one loses it);
- short_side: the upload's shorter side in pixels.

Each modality's limits are fitted on its labelled training images
(`python -m cnn_model.training.quality_fit`) so that only a small, stated share of them would be
refused, and kept with its model as `quality.json`; a modality without that file is not checked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .preprocessing import normalise_mode

WORKING_SIDE = 128
QUALITY_FILE = "quality.json"
# The order problems are named in: the one a person can least fix by retaking comes first.
REASONS = ("too_small", "too_dark", "too_bright", "low_contrast", "blurry")


@dataclass(frozen=True)
class Capture:
    """What the quality check measures of an image."""

    short_side: int
    brightness: float
    contrast: float
    sharpness: float


@dataclass(frozen=True)
class QualityLimits:
    """The values past which a modality's images are refused (see the module's docstring)."""

    min_short_side: int
    min_brightness: float
    max_brightness: float
    min_contrast: float
    min_sharpness: float

    def problem(self, capture: Capture) -> str | None:
        """The first of REASONS this capture fails, or None when the model can read it."""
        failing = {
            "too_small": capture.short_side < self.min_short_side,
            "too_dark": capture.brightness < self.min_brightness,
            "too_bright": capture.brightness > self.max_brightness,
            "low_contrast": capture.contrast < self.min_contrast,
            "blurry": capture.sharpness < self.min_sharpness,
        }
        return next((reason for reason in REASONS if failing[reason]), None)

    def to_json(self) -> dict:
        return asdict(self)


def measure(image: Image.Image, short_side: int | None = None) -> Capture:
    """Measure image; short_side is the upload's own when the image was decoded smaller (a JPEG's draft)."""
    gray = normalise_mode(image).convert("L")
    scale = WORKING_SIDE / min(gray.size)
    if scale < 1.0:
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.BOX)
    pixels = np.asarray(gray, dtype=np.float64)
    contrast = float(pixels.std())
    return Capture(
        short_side=short_side if short_side is not None else min(image.size),
        brightness=float(pixels.mean()),
        contrast=contrast,
        sharpness=float(_laplacian(pixels).std() / contrast) if contrast > 0 else 0.0,
    )


def _laplacian(pixels: np.ndarray) -> np.ndarray:
    """The 4-neighbour Laplacian of the interior pixels (an image under 3 pixels a side has none: zeros)."""
    if min(pixels.shape) < 3:
        return np.zeros(1)
    centre = pixels[1:-1, 1:-1]
    return pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:] - 4.0 * centre


def read_limits(model_dir: Path, modality: str) -> QualityLimits | None:
    """The modality's limits from its quality.json beside its model, None when it has none."""
    return _read_limits(str(model_dir), modality)


@lru_cache(maxsize=32)
def _read_limits(model_dir: str, modality: str) -> QualityLimits | None:
    path = Path(model_dir) / modality / QUALITY_FILE
    if not path.is_file():
        return None
    return QualityLimits(**json.loads(path.read_text())["limits"])
