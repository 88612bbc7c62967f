"""The one preprocessing function shared by training, evaluation and serving."""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .specs import ModalitySpec

ImageSource = Union[str, Path, bytes, BinaryIO, Image.Image]


class ImageLoadError(ValueError):
    """The file is not an image this package can read."""


def load_image(source: ImageSource) -> Image.Image:
    """Open an image from a path, bytes or a file object, EXIF orientation applied."""
    if isinstance(source, Image.Image):
        return source
    try:
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        with Image.open(source) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ImageLoadError(f"no such file: {source}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageLoadError(f"not a readable image: {exc}") from None


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
    image = load_image(source)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale (common for radiographs): scale to 8 bits before conversion.
        array = np.asarray(image, dtype=np.float64)
        span = max(array.max() - array.min(), 1.0)
        image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8), mode="L")
    image = image.convert(spec.color_mode)
    size = (spec.input_size, spec.input_size)
    if spec.resize_mode == "pad":
        image = ImageOps.pad(image, size, method=Image.Resampling.BILINEAR, color=_border_colour(image))
    else:
        image = image.resize(size, Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array)
