"""Near-domain foreign close-ups: animals, faces, textures and other photos that are none of our kinds.

Every picture is a sample file an installed package ships (scikit-image's `skimage.data`, matplotlib's
sample data, scikit-learn's sample photos) or is drawn here (`generated:fundus`: fundus-like pictures,
a dark background, an orange-red retina disc, a bright optic disc and branching vessels), cut into
close-ups: the whole picture, crops at several scales, rotations and flips. Nothing is downloaded.
Each source picture belongs to one part only: "fit" (used to refit the gate's refusal) or "held_out"
(never used to fit, only to measure), so no crop of a held-out picture is ever seen in fitting.
Licences, as the packages state them, in SOURCES.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FIT, HELD_OUT = "fit", "held_out"
LFW_FACES = 100  # lfw_subset(): the first 100 are faces, the other 100 not
LFW_FIT_FACES = 50  # faces 0-49 fit, 50-99 held out (different people)
FUNDUS_PICTURES = 20  # generated:fundus, each cut into 8 close-ups


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # animal, face, texture, object, medical (of a kind we do not read)
    part: str  # FIT or HELD_OUT
    licence: str


SOURCES = (
    # Held out: never used to fit. The cat is the case that was let through as a skin lesion.
    Source("skimage:chelsea", "animal", HELD_OUT, "CC0 (Stefan van der Walt), scikit-image"),
    Source("skimage:astronaut", "face", HELD_OUT, "public domain (NASA), scikit-image"),
    Source("skimage:camera", "face", HELD_OUT, "CC0 (Lav Varshney), scikit-image"),
    Source("skimage:lfw-held-out", "face", HELD_OUT, "Labeled Faces in the Wild subset, scikit-image (research use)"),
    Source("skimage:gravel", "texture", HELD_OUT, "CC0 (CC0Textures Gravel04), scikit-image"),
    Source("skimage:coffee", "object", HELD_OUT, "CC0 (Rachel Michetti), scikit-image"),
    Source("skimage:hubble_deep_field", "object", HELD_OUT, "public domain (NASA), scikit-image"),
    Source("skimage:retina", "medical", HELD_OUT, "CC0 (Wikimedia fundus photograph), scikit-image"),
    Source("sklearn:flower", "object", HELD_OUT, "scikit-learn sample image (CC BY 2.0, Flickr)"),
    # Fit: the refusal learns from these.
    Source("matplotlib:grace_hopper", "face", FIT, "public domain (US Navy), matplotlib sample data"),
    Source("skimage:lfw-fit", "face", FIT, "Labeled Faces in the Wild subset, scikit-image (research use)"),
    Source("skimage:brick", "texture", FIT, "CC0 (CC0Textures Bricks25), scikit-image"),
    Source("skimage:grass", "texture", FIT, "CC0 (DeviantArt linolafett), scikit-image"),
    Source("matplotlib:Minduka_Present_Blue_Pack", "texture", FIT, "CC BY-SA 3.0 (Minduka), matplotlib sample data"),
    Source("skimage:rocket", "object", FIT, "public domain (SpaceX), scikit-image"),
    Source("skimage:coins", "object", FIT, "public domain (Brooklyn Museum), scikit-image"),
    Source("skimage:immunohistochemistry", "medical", FIT, "no known copyright restrictions, scikit-image"),
    Source("skimage:cell", "medical", FIT, "CC0 (Guck lab), scikit-image"),
    Source("sklearn:china", "object", FIT, "scikit-learn sample image (CC BY 2.0, Flickr)"),
    Source("generated:fundus", "medical", FIT, "generated here (fundus_picture)"),
)


def _rgb(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = (255 * (array - array.min()) / max(float(array.max() - array.min()), 1e-9)).astype(np.uint8)
    image = Image.fromarray(array)
    return image.convert("RGB")


def _pictures(source: Source) -> list[Image.Image]:
    """The source's picture(s), RGB."""
    package, name = source.name.split(":", 1)
    if package == "generated":
        return [fundus_picture(np.random.default_rng((_seed(source.name), i))) for i in range(FUNDUS_PICTURES)]
    if package == "skimage":
        import skimage.data

        if name.startswith("lfw"):
            faces = skimage.data.lfw_subset()[:LFW_FACES]
            chosen = faces[:LFW_FIT_FACES] if name == "lfw-fit" else faces[LFW_FIT_FACES:]
            return [_rgb(face).resize((100, 100), Image.Resampling.BICUBIC) for face in chosen]
        return [_rgb(getattr(skimage.data, name)())]
    if package == "matplotlib":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data"
        file = next(path.glob(f"{name}.*"))
        with Image.open(file) as image:
            return [image.convert("RGB")]
    from sklearn.datasets import load_sample_image

    return [Image.fromarray(load_sample_image(f"{name}.jpg"))]


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Noise in [-1, 1] varying over about `cells` cells across the picture (a small random grid, enlarged)."""
    grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(grid.resize(size, Image.Resampling.BICUBIC), dtype=np.float32) / 127.5 - 1


def fundus_picture(rng: np.random.Generator) -> Image.Image:
    """A fundus-like picture drawn from rng: not a photograph of any eye, only its broad look.

    A dark background; a round orange-red retina disc, darker toward its rim, with blotchy texture and
    grain; a bright yellowish optic disc away from the centre; dark-red vessels leaving it in a few
    trunks that wander and branch, thinner at each branch. Colours, sizes, positions and the rotation
    are random.
    """
    width = int(rng.integers(320, 481))
    height = int(width * rng.uniform(0.75, 1.0))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = min(width, height) * rng.uniform(0.42, 0.56)  # above 0.5 the disc is cut at the top and bottom
    cx, cy = width / 2 + rng.normal(0, 0.03) * width, height / 2 + rng.normal(0, 0.03) * height
    r = np.hypot(x - cx, y - cy) / radius

    base = np.array([rng.uniform(170, 240), rng.uniform(55, 120), rng.uniform(15, 55)], dtype=np.float32)
    shade = 1 - rng.uniform(0.3, 0.65) * np.clip(r, 0, 1) ** rng.uniform(1.5, 3.0)
    blotches = 1 + rng.uniform(0.04, 0.12) * _smooth_noise(rng, (width, height), int(rng.integers(6, 16)))
    picture = base * (shade * blotches)[..., None]

    angle = rng.uniform(-0.4, 0.4) + (0 if rng.random() < 0.5 else np.pi)
    distance = radius * rng.uniform(0.3, 0.55)
    ox, oy = cx + distance * np.cos(angle), cy + distance * np.sin(angle)
    disc_radius = radius * rng.uniform(0.07, 0.13)
    glow = np.exp(-(((x - ox) ** 2 + (y - oy) ** 2) / (2 * (disc_radius * rng.uniform(1.5, 2.5)) ** 2)))
    core = np.clip((disc_radius - np.hypot(x - ox, y - oy)) / (0.25 * disc_radius), 0, 1)
    disc_colour = np.array([rng.uniform(235, 255), rng.uniform(195, 240), rng.uniform(110, 180)], dtype=np.float32)
    weight = np.clip(0.35 * glow + 0.75 * core, 0, 1)[..., None]
    picture = picture * (1 - weight) + disc_colour * weight

    vessels = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(vessels)
    stack = [
        (ox, oy, angle + np.pi + rng.uniform(-1.2, 1.2) if i % 2 else rng.uniform(0, 2 * np.pi), radius * 0.025)
        for i in range(int(rng.integers(4, 8)))
    ]
    drawn = 0
    while stack and drawn < 400:
        px, py, heading, thickness = stack.pop()
        drawn += 1
        for _step in range(int(rng.integers(8, 30))):
            heading += rng.normal(0, 0.18)
            step = radius * rng.uniform(0.025, 0.05)
            nx, ny = px + step * np.cos(heading), py + step * np.sin(heading)
            draw.line((px, py, nx, ny), fill=255, width=max(1, round(thickness)))
            px, py = nx, ny
            if np.hypot(px - cx, py - cy) > radius:
                break
            if thickness > 1.2 and rng.random() < 0.12:
                side = 1 if rng.random() < 0.5 else -1
                stack.append((px, py, heading + side * rng.uniform(0.4, 1.0), thickness * rng.uniform(0.6, 0.8)))
                thickness *= rng.uniform(0.8, 0.95)
    vessels = vessels.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
    vessel_colour = np.array([rng.uniform(110, 170), rng.uniform(15, 50), rng.uniform(15, 40)], dtype=np.float32)
    weight = (np.asarray(vessels, dtype=np.float32) / 255 * rng.uniform(0.6, 0.9))[..., None]
    picture = picture * (1 - weight) + vessel_colour * weight

    picture += rng.normal(0, rng.uniform(2, 6), picture.shape)
    inside = np.clip((1 - r) * radius / 2, 0, 1)[..., None]  # a soft rim two pixels wide
    level = int(rng.integers(0, 13))
    background = level + rng.normal(0, 1.5, picture.shape)
    picture = picture * inside + background * (1 - inside)
    image = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8))
    return image.rotate(rng.uniform(0, 360), resample=Image.Resampling.BILINEAR, fillcolor=(level,) * 3)


def close_ups(image: Image.Image, rng: np.random.Generator, crops: int) -> Iterator[tuple[str, Image.Image]]:
    """The whole picture, its rotations and a flip, and random square crops of 20-70% of the shorter side."""
    yield "whole", image
    for angle in (90, 180, 270):
        yield f"rot{angle}", image.rotate(angle, expand=True)
    yield "rot30", image.rotate(30, resample=Image.Resampling.BILINEAR)
    yield "flip", image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    width, height = image.size
    for i in range(crops):
        side = int(min(width, height) * rng.uniform(0.2, 0.7))
        x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crop = image.crop((x, y, x + side, y + side))
        if i % 3 == 1:
            crop = crop.rotate(int(rng.choice((90, 180, 270))))
        yield f"crop{i}", crop


def near_domain_images(part: str, sources: Collection[str] | None = None) -> Iterator[tuple[str, str, Image.Image]]:
    """(kind, name, image) for every close-up of the part's sources (of those named, if given); the same every time.

    Each source's close-ups depend on its name only, so naming a few sources gives the same close-ups of them.
    """
    for source in SOURCES:
        if source.part != part or (sources is not None and source.name not in sources):
            continue
        rng = np.random.default_rng(_seed(source.name))
        pictures = _pictures(source)
        crops = 2 if len(pictures) > 1 else 24
        for p, picture in enumerate(pictures):
            for variant, image in close_ups(picture, rng, crops):
                suffix = f"{p}-{variant}" if len(pictures) > 1 else variant
                yield source.kind, f"{source.name}-{suffix}", image


def _seed(name: str) -> int:
    return int.from_bytes(name.encode("utf-8")[:8].ljust(8, b"\0"), "little") % 2**32


def source_of(name: str) -> str:
    """The source picture a close-up's name (from near_domain_images) was cut from."""
    return next(s.name for s in SOURCES if name.startswith(f"{s.name}-"))


def check_near_domain(gate, part: str = HELD_OUT) -> dict:
    """How many of the part's close-ups the gate refuses, by kind and by source, with what it took the others for."""
    by_kind: dict[str, dict] = {}
    by_source: dict[str, dict] = {}
    for kind, name, image in near_domain_images(part):
        taken_for = gate.detect(image).modality
        for entry in (
            by_kind.setdefault(kind, {"images": 0, "refused": 0, "taken_for": {}}),
            by_source.setdefault(source_of(name), {"images": 0, "refused": 0, "taken_for": {}}),
        ):
            entry["images"] += 1
            if taken_for is None:
                entry["refused"] += 1
            else:
                entry["taken_for"][taken_for] = entry["taken_for"].get(taken_for, 0) + 1
    images = sum(e["images"] for e in by_kind.values())
    refused = sum(e["refused"] for e in by_kind.values())
    return {
        "part": part,
        "images": images,
        "refused": refused,
        "refused_share": round(refused / images, 4),
        "by_kind": by_kind,
        "by_source": by_source,
    }


if __name__ == "__main__":
    import json

    from ..gate import GATE_DIR_NAME, ModalityGate
    from ..runtime import ARTIFACTS_DIR

    shipped = ModalityGate(ARTIFACTS_DIR / GATE_DIR_NAME)
    print(json.dumps({part: check_near_domain(shipped, part) for part in (FIT, HELD_OUT)}, indent=1))
