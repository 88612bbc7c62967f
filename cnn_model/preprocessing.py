"""The one preprocessing function shared by training, evaluation and serving."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .specs import ModalitySpec

ImageSource = str | Path | bytes | BinaryIO | Image.Image


# Transparent areas become white, as most viewers show them on a page.
FLATTEN_BACKGROUND = 255


class ImageLoadError(ValueError):
    """The file is not an image this package can read."""


def _rescale_to_8bit(image: Image.Image) -> Image.Image:
    """High bit-depth or float grayscale -> L, stretched over the values actually used.

    Radiographs often carry 10-16 significant bits in a 16-bit container; dividing by 257 would
    leave a 12-bit X-ray nearly black, so the range present in the image is what maps to 0..255.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if not np.isfinite(pixels).all():
        raise ImageLoadError("the image holds NaN or infinite pixel values")
    low, high = float(pixels.min()), float(pixels.max())
    if image.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = pixels * 255.0
    elif low >= 0 and high <= 255 and not image.mode.startswith("I;16"):
        scaled = pixels
    else:
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _flatten(image: Image.Image, mode: str) -> Image.Image:
    background = Image.new(mode, image.size, (FLATTEN_BACKGROUND,) * len(mode))
    background.paste(image.convert(mode), mask=image.getchannel("A"))
    return background


def normalise_mode(image: Image.Image) -> Image.Image:
    """The image as RGB (colour) or L (grayscale), transparency flattened onto white."""
    mode = image.mode
    if mode in ("RGB", "L"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("LA", "La"):
        return _flatten(image.convert("LA"), "L")
    if mode.startswith("I") or mode == "F":
        return _rescale_to_8bit(image)
    if mode in ("RGBA", "RGBa") or (mode in ("P", "PA") and ("transparency" in image.info or mode == "PA")):
        return _flatten(image.convert("RGBA"), "RGB")
    return image.convert("RGB")


def load_image(source: ImageSource) -> Image.Image:
    """Open an image from a path, bytes or a file object: EXIF orientation applied, RGB or L."""
    if isinstance(source, Image.Image):
        return normalise_mode(source)
    try:
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        with Image.open(source) as image:
            image.load()
            return normalise_mode(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise ImageLoadError(f"no such file: {source}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageLoadError(f"not a readable image: {exc}") from None


def _letterbox(image: Image.Image, side: int) -> Image.Image:
    """Fit the image into a side x side square, aspect ratio kept, padded with its border colour."""
    colour = _border_colour(image)
    if min(image.size) * side >= max(image.size):
        return ImageOps.pad(image, (side, side), method=Image.Resampling.BILINEAR, color=colour)
    # A sliver (say 5000x1) would shrink to zero pixels thick: keep one row or column instead.
    scale = side / max(image.size)
    fitted = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
    )
    canvas = Image.new(image.mode, (side, side), colour)
    canvas.paste(fitted, ((side - fitted.width) // 2, (side - fitted.height) // 2))
    return canvas


def _border_colour(image: Image.Image) -> tuple[int, ...] | int:
    """Mean colour of the outermost pixels: the background a cell crop is padded with."""
    pixels = np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    mean = border.reshape(-1, 1 if pixels.ndim == 2 else pixels.shape[-1]).mean(axis=0).round().astype(int)
    return int(mean[0]) if pixels.ndim == 2 else tuple(int(v) for v in mean)


def preprocess_for_model(source: ImageSource, spec: ModalitySpec) -> np.ndarray:
    """Turn an image into the model's input: float32, (size, size, 3), values 0..255.

    Grayscale modalities are reduced to one channel first and then repeated to the three
    channels the ImageNet backbone expects, so a colour upload of an X-ray is treated
    exactly like the grayscale training images. The network normalises internally.
    """
    image = load_image(source).convert(spec.color_mode)
    size = (spec.input_size, spec.input_size)
    if spec.resize_mode == "pad":
        image = _letterbox(image, spec.input_size)
    else:
        image = image.resize(size, Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if spec.input_mask:
        array = mask_outside(array, spec.input_mask)
    return np.ascontiguousarray(array)


def mask_outside(array: np.ndarray, mask: tuple[float, float, float, float]) -> np.ndarray:
    """Fill the (top, bottom, left, right) margins, as fractions of each side, with the kept region's mean colour.

    The mean is cut to a whole grey level, as every other pixel is, so a training set stored as uint8
    holds exactly what serving computes.
    """
    height, width = array.shape[:2]
    top, bottom, left, right = mask
    rows = slice(round(top * height), height - round(bottom * height))
    columns = slice(round(left * width), width - round(right * width))
    kept = array[rows, columns]
    if kept.size == 0:
        raise ValueError(f"input_mask {mask} leaves nothing of the image")
    out = np.empty_like(array)
    out[...] = np.floor(kept.reshape(-1, array.shape[2]).mean(axis=0))
    out[rows, columns] = kept
    return out
