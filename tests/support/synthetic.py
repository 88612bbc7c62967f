"""Pictures that are none of our modalities, drawn by the tests themselves."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def foreign_image(kind: str) -> Image.Image:
    """A solid colour, noise, a gradient or a page of text."""
    if kind == "solid colour":
        return Image.new("RGB", (320, 240), (30, 120, 200))
    if kind == "noise":
        return Image.fromarray(np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    if kind == "gradient":
        return Image.fromarray(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1)), mode="L")
    if kind == "text page":
        page = Image.new("RGB", (500, 700), "white")
        draw = ImageDraw.Draw(page)
        for row in range(30):
            draw.text((20, 20 + row * 20), "Invoice 2024-117, consultation and laboratory fees " * 2, fill="black")
        return page
    raise ValueError(kind)


def foreign_png(kind: str) -> bytes:
    buffer = io.BytesIO()
    foreign_image(kind).save(buffer, format="PNG")
    return buffer.getvalue()
