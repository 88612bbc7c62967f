"""Foreign images: pictures that are none of our modalities, made here, to check the gate refuses them.

Nothing is downloaded: every image is drawn by this code (colours, noise, gradients, patterns, text
pages, charts) or taken from sample files that installed packages ship (matplotlib's sample data,
scikit-learn's sample photos when it is installed), plus any PNG screenshots of our own pages
found in extra folders. Deterministic: the same list every time.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_TEXT = (
    "Patient information leaflet. Please read all of this leaflet carefully before you start. "
    "Keep this leaflet; you may need to read it again. If you have any further questions, ask your "
    "doctor or pharmacist. Invoice 2024-117: consultation, laboratory tests, follow-up appointment. "
    "Total due within thirty days. The quick brown fox jumps over the lazy dog 0123456789."
)


def foreign_images(extra_folders: tuple[Path, ...] = ()) -> Iterator[tuple[str, str, Image.Image]]:
    """(kind, name, image) for every foreign image."""
    rng = np.random.default_rng(20261201)
    yield from _solid_colours()
    yield from _noise(rng)
    yield from _gradients()
    yield from _patterns()
    yield from _text_pages(rng)
    yield from _charts(rng)
    yield from _package_photos()
    for folder in extra_folders:
        for path in sorted(Path(folder).glob("*.png")):
            with Image.open(path) as image:
                yield "screenshot", path.name, image.convert("RGB")


def _solid_colours():
    colours = [
        (0, 0, 0),
        (255, 255, 255),
        (128, 128, 128),
        (200, 30, 30),
        (30, 160, 60),
        (40, 60, 200),
        (240, 220, 40),
        (250, 180, 200),
        (120, 70, 30),
        (20, 20, 60),
        (235, 200, 170),
        (60, 60, 60),
    ]
    for colour in colours:
        yield "solid colour", f"rgb{colour}", Image.new("RGB", (400, 300), colour)


def _noise(rng):
    for i in range(6):
        size = (int(rng.integers(64, 640)), int(rng.integers(64, 640)))
        yield "noise", f"uniform-rgb-{i}", Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
        gray = np.clip(rng.normal(128, 40 + 10 * i, size[::-1]), 0, 255).astype(np.uint8)
        yield "noise", f"gaussian-gray-{i}", Image.fromarray(gray, mode="L")
        salt = np.where(rng.random(size[::-1]) < 0.05 * (i + 1), 255, 0).astype(np.uint8)
        yield "noise", f"salt-and-pepper-{i}", Image.fromarray(salt, mode="L")


def _gradients():
    y, x = np.mgrid[0:300, 0:400] / np.array([299.0, 399.0])[:, None, None]
    radial = np.clip(np.hypot(x - 0.5, y - 0.5) * 1.6, 0, 1)
    ramps = {"horizontal": x, "vertical": y, "diagonal": (x + y) / 2, "radial": radial, "inverse-radial": 1 - radial}
    for name, ramp in ramps.items():
        yield "gradient", f"gray-{name}", Image.fromarray((ramp * 255).astype(np.uint8), mode="L")
        rgb = np.stack([ramp, 1 - ramp, np.full_like(ramp, 0.5)], axis=-1)
        yield "gradient", f"colour-{name}", Image.fromarray((rgb * 255).astype(np.uint8))


def _patterns():
    for cell in (8, 32):
        y, x = np.mgrid[0:320, 0:320]
        board = (((x // cell) + (y // cell)) % 2 * 255).astype(np.uint8)
        yield "pattern", f"checkerboard-{cell}", Image.fromarray(board, mode="L")
        stripes = ((np.sin(x / cell * np.pi) > 0) * 255).astype(np.uint8)
        yield "pattern", f"stripes-{cell}", Image.fromarray(np.stack([stripes, stripes // 2, 255 - stripes], -1))


def _font(size: int):
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def _text_pages(rng):
    schemes = [
        ((255, 255, 255), (0, 0, 0)),
        ((20, 20, 20), (230, 230, 230)),
        ((250, 245, 230), (40, 40, 90)),
        ((230, 240, 255), (10, 60, 120)),
        ((255, 255, 255), (180, 20, 20)),
        ((0, 0, 0), (0, 255, 0)),
    ]
    for i, (background, ink) in enumerate(schemes):
        for size in (14, 28):
            page = Image.new("RGB", (600, 800) if size == 14 else (800, 450), background)
            draw = ImageDraw.Draw(page)
            words, line, y = _TEXT.split(), "", 20
            for word in words * 4:
                if len(line) + len(word) > (60 if size == 14 else 40):
                    draw.text((20, y), line, fill=ink, font=_font(size))
                    line, y = "", y + int(size * 1.5)
                line += word + " "
            yield "text page", f"text-{i}-{size}px", page


def _charts(rng):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    kinds = ("line", "bar", "scatter", "pie", "histogram", "image")
    for i, kind in enumerate(kinds * 2):
        figure, axes = plt.subplots(figsize=(6, 4), dpi=80)
        values = rng.random(12)
        if kind == "line":
            axes.plot(np.cumsum(rng.normal(size=100)))
        elif kind == "bar":
            axes.bar(range(12), values)
        elif kind == "scatter":
            axes.scatter(rng.random(200), rng.random(200), c=rng.random(200))
        elif kind == "pie":
            axes.pie(values[:5])
        elif kind == "histogram":
            axes.hist(rng.normal(size=500), bins=30)
        else:
            axes.imshow(rng.random((20, 20)), cmap="viridis")
        axes.set_title(f"Quarterly figures {2020 + i}")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        yield "chart", f"{kind}-{i}", Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _package_photos():
    """Photos and pictures that installed packages ship, whole and cropped."""
    for name, image in _shipped_pictures():
        yield "photo", name, image
        width, height = image.size
        yield "photo", f"{name}-centre-crop", image.crop((width // 4, height // 4, 3 * width // 4, 3 * height // 4))
        yield "photo", f"{name}-gray", image.convert("L")
        yield "photo", f"{name}-corner", image.crop((0, 0, width // 2, height // 2))


def _shipped_pictures():
    try:
        import matplotlib

        sample = Path(matplotlib.get_data_path()) / "sample_data"
        for file in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
            if (sample / file).is_file():
                with Image.open(sample / file) as image:
                    yield file, image.convert("RGB")
        if (sample / "s1045.ima.gz").is_file():
            # A brain MRI slice (256x256, 16 bit): a medical image, but of no kind we read.
            pixels = np.frombuffer(gzip.decompress((sample / "s1045.ima.gz").read_bytes()), np.uint16)
            mri = pixels.reshape(256, 256).astype(np.float64)
            yield "brain-mri-s1045", Image.fromarray((mri / mri.max() * 255).astype(np.uint8), mode="L")
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        for i, array in enumerate(load_sample_images().images):
            yield f"sklearn-sample-{i}", Image.fromarray(array)
    except ImportError:
        pass
