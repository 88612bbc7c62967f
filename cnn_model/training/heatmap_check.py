"""Where the served class-activation maps put their mass, per modality, on the val/ images.

Why: the chest X-ray heatmaps were seen to peak on the mediastinum, trachea and neck rather than the
lung fields, for both classes, which hints that the model may read acquisition cues (positioning,
collimation, markers) rather than the lungs. This check measures that instead of eyeballing it.

It runs the shipped serving path (ModelRunner.predict with heatmap=True: the card's decision
adjustment, the predicted class's CAM cut at zero and scaled to peak 1) and, per image, upsamples the
CAM to the model's square input the way the service renders it (bilinear) and reports the share of its
mass in named boxes of that square. A CAM here is a 5x5 or 6x6 grid, so a box narrower than one cell
(the mediastinum strip) can only be told apart from its neighbours coarsely; the report gives each
box's area share too, the share a flat map would give.

    python -m cnn_model.training.heatmap_check [--modality M ...] [--limit N] [--out DIR]

Writes report.json (summaries), images.csv (one row per image) and one contact sheet per modality
(a palette PNG: 8 correct and 8 wrong cases, heatmap over the model's input, the boxes drawn; for a
two-class model also <modality>_by_class.png, 8 correct cases of each class) under --out.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..data import list_class_folder
from ..modalities import SPECS
from ..preprocessing import preprocess_for_model
from ..runtime import ARTIFACTS_DIR, CARD_FILE, ActivationMap, ModelRunner
from ..specs import HeatmapRegions, Region
from .crossval.folds import CV_DIR

DEFAULT_DATA_ROOT = Path("../shared/datasets")
DEFAULT_OUT = CV_DIR / "heatmaps"

SHEET_CASES = 8  # correct and wrong cases per contact sheet, a 4x4 grid
SHEET_COLUMNS = 4
TILE_SIDE = 192
CAPTION_HEIGHT = 26
SHEET_COLOURS = 96  # enough for a heatmap over a grey or colour image at a glance


def region_mask(region: Region, side: int) -> np.ndarray:
    """Boolean (side, side) mask of the pixels whose centres fall in the region."""
    centres = (np.arange(side) + 0.5) / side
    x, y = centres[None, :], centres[:, None]
    if region.frame > 0:
        f = region.frame
        return ~((x >= f) & (x < 1 - f) & (y >= f) & (y < 1 - f))
    mask = np.zeros((side, side), dtype=bool)
    for x0, y0, x1, y1 in region.boxes:
        mask |= (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    return mask


def upsample(grid: np.ndarray, side: int) -> np.ndarray:
    """The CAM grid on the square input, bilinear as the service renders it, negative parts cut."""
    cam = Image.fromarray(np.maximum(np.asarray(grid, dtype=np.float32), 0), mode="F")
    return np.asarray(cam.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64).clip(min=0)


def region_shares(heat: np.ndarray, regions: Mapping[str, Region]) -> dict[str, float]:
    """Share of the map's total mass in each region (NaN for an all-zero map)."""
    total = float(heat.sum())
    side = heat.shape[0]
    return {
        name: (float(heat[region_mask(region, side)].sum()) / total if total > 0 else float("nan"))
        for name, region in regions.items()
    }


def area_shares(regions: Mapping[str, Region], side: int) -> dict[str, float]:
    """Each region's share of the square: what a flat map would put there."""
    return {name: float(region_mask(region, side).mean()) for name, region in regions.items()}


def peak_cell(grid: np.ndarray) -> tuple[int, int]:
    """(row, column) of the grid's highest cell."""
    row, column = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(row), int(column)


def contains(region: Region, x: float, y: float) -> bool:
    """Whether the point (fractions of the square) lies in the region."""
    if region.frame > 0:
        f = region.frame
        return not (f <= x < 1 - f and f <= y < 1 - f)
    return any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in region.boxes)


def peak_region(cell: tuple[int, int], grid_shape: tuple[int, int], layout: HeatmapRegions) -> str:
    """The first region of the layout's peak_order holding the peak cell's centre, else "other"."""
    rows, columns = grid_shape
    x, y = (cell[1] + 0.5) / columns, (cell[0] + 0.5) / rows
    return next((name for name in layout.peak_order if contains(layout.regions[name], x, y)), "other")


def on_edge(cell: tuple[int, int], grid_shape: tuple[int, int]) -> bool:
    """Whether the cell is in the grid's outer ring."""
    return cell[0] in (0, grid_shape[0] - 1) or cell[1] in (0, grid_shape[1] - 1)


@dataclass
class Case:
    path: Path
    true_label: str
    predicted: str
    confidence: float
    grid: np.ndarray  # the served ActivationMap's grid, peak 1
    shares: dict[str, float]
    peak: tuple[int, int]
    peak_region: str

    @property
    def correct(self) -> bool:
        return self.predicted == self.true_label


def check_image(runner: ModelRunner, path: Path, true_label: str, layout: HeatmapRegions) -> Case:
    prediction = runner.predict(path, heatmap=True)
    grid = prediction.activation_map.grid.astype(np.float32)
    heat = upsample(grid, runner.spec.input_size)
    cell = peak_cell(grid)
    return Case(
        path=path,
        true_label=true_label,
        predicted=prediction.label,
        confidence=prediction.confidence,
        grid=grid,
        shares=region_shares(heat, layout.regions),
        peak=cell,
        peak_region=peak_region(cell, grid.shape, layout),
    )


def spread(indices_count: int, wanted: int) -> list[int]:
    """wanted indices spread evenly over range(indices_count), first and last included."""
    if indices_count <= wanted:
        return list(range(indices_count))
    return [int(round(i)) for i in np.linspace(0, indices_count - 1, wanted)]


def sample_images(data_root: Path, modality: str, limit: int | None) -> list:
    """The val/ images in sorted order; with limit, at most that many per class, spread over the class."""
    samples = list_class_folder(data_root / modality / "val", SPECS[modality])
    if limit is None:
        return samples
    chosen = []
    for label in SPECS[modality].class_names:
        of_class = [s for s in samples if s.label == label]
        chosen += [of_class[i] for i in spread(len(of_class), limit)]
    return chosen


def summarise(cases: list[Case], layout: HeatmapRegions) -> dict:
    """Mean and median share per region, and where the peak cells lie (grid counts, edge ring, named region)."""
    if not cases:
        return {"n": 0}
    rows, columns = cases[0].grid.shape
    peaks = np.zeros((rows, columns), dtype=int)
    for case in cases:
        peaks[case.peak] += 1
    shares = {name: np.array([c.shares[name] for c in cases]) for name in layout.regions}
    summary = {
        "n": len(cases),
        "mean": {name: round(float(np.nanmean(v)), 4) for name, v in shares.items()},
        "median": {name: round(float(np.nanmedian(v)), 4) for name, v in shares.items()},
        "peak_on_edge_cells": round(sum(on_edge(c.peak, (rows, columns)) for c in cases) / len(cases), 4),
        "peak_cells": peaks.tolist(),
    }
    summary["peak_regions"] = {n: sum(c.peak_region == n for c in cases) for n in [*layout.peak_order, "other"]}
    return summary


def group_cases(cases: list[Case], class_names) -> dict[str, list[Case]]:
    groups = {
        "all": cases,
        "correct": [c for c in cases if c.correct],
        "wrong": [c for c in cases if not c.correct],
    }
    for label in class_names:
        of_class = [c for c in cases if c.true_label == label]
        groups[f"true={label}"] = of_class
        groups[f"true={label}/correct"] = [c for c in of_class if c.correct]
        groups[f"true={label}/wrong"] = [c for c in of_class if not c.correct]
    return groups


def modality_report(runner: ModelRunner, cases: list[Case], layout: HeatmapRegions) -> dict:
    rows, columns = cases[0].grid.shape
    regions = layout.regions
    return {
        "model_version": runner.version,
        "input_side": runner.spec.input_size,
        "resize_mode": runner.spec.resize_mode,
        "cam_grid": [rows, columns],
        "regions": {name: {"boxes": r.boxes, "frame": r.frame} for name, r in regions.items()},
        "area_share": {k: round(v, 4) for k, v in area_shares(regions, runner.spec.input_size).items()},
        "accuracy": round(sum(c.correct for c in cases) / len(cases), 4),
        "groups": {
            name: summarise(group, layout) for name, group in group_cases(cases, runner.spec.class_names).items()
        },
    }


def sheet_cases(cases: list[Case]) -> list[Case]:
    """SHEET_CASES correct then SHEET_CASES wrong cases, spread over the sorted file order."""
    correct = [c for c in cases if c.correct]
    wrong = [c for c in cases if not c.correct]
    return [correct[i] for i in spread(len(correct), SHEET_CASES)] + [wrong[i] for i in spread(len(wrong), SHEET_CASES)]


def draw_regions(tile: Image.Image, regions: dict[str, Region]) -> None:
    draw = ImageDraw.Draw(tile)
    side = tile.width
    for region in regions.values():
        for x0, y0, x1, y1 in region.boxes if region.colour else ():
            draw.rectangle([x0 * side, y0 * side, x1 * side - 1, y1 * side - 1], outline=region.colour)


def short_label(label: str) -> str:
    """A class name short enough for a caption: "moderate_dysplastic" -> "mod_dys"."""
    return label if len(label) <= 10 else "_".join(word[:3] for word in label.split("_"))


def fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """text cut in the middle with "~" until it fits width pixels."""
    while draw.textlength(text, font=font) > width and len(text) > 4:
        middle = len(text) // 2
        text = text[: middle - 1] + "~" + text[middle + 1 :]
    return text


def render_tile(runner: ModelRunner, case: Case, regions: dict[str, Region], font) -> Image.Image:
    """The model's input with the served heatmap laid over it, the boxes, and a two-line caption."""
    square = preprocess_for_model(case.path, runner.spec).astype(np.uint8)
    overlay = ActivationMap(case.grid.astype(np.float16), "stretch").render(Image.fromarray(square, mode="RGB"))
    tile = Image.open(io.BytesIO(overlay)).convert("RGB").resize((TILE_SIDE, TILE_SIDE))
    draw_regions(tile, regions)
    framed = Image.new("RGB", (TILE_SIDE, TILE_SIDE + CAPTION_HEIGHT), "white")
    framed.paste(tile, (0, 0))
    draw = ImageDraw.Draw(framed)
    mark = "ok" if case.correct else "WRONG"
    lines = [
        fit_text(draw, case.path.name, TILE_SIDE - 4, font),
        f"{short_label(case.true_label)} -> {short_label(case.predicted)} {case.confidence:.2f} {mark}",
    ]
    for i, line in enumerate(lines):
        draw.text((2, TILE_SIDE + 1 + 12 * i), fit_text(draw, line, TILE_SIDE - 4, font), fill="black", font=font)
    return framed


def class_sheet_cases(cases: list[Case], class_names) -> list[Case]:
    """Correct cases only, an equal number per true class (two classes: SHEET_CASES each), in file order."""
    per_class = 2 * SHEET_CASES // len(class_names)
    chosen = []
    for label in class_names:
        of_class = [c for c in cases if c.correct and c.true_label == label]
        chosen += [of_class[i] for i in spread(len(of_class), per_class)]
    return chosen


def contact_sheet(runner: ModelRunner, chosen: list[Case], regions: dict[str, Region]) -> Image.Image:
    font = ImageFont.load_default()
    rows = max(1, -(-len(chosen) // SHEET_COLUMNS))
    sheet = Image.new("RGB", (SHEET_COLUMNS * TILE_SIDE, rows * (TILE_SIDE + CAPTION_HEIGHT)), "white")
    for i, case in enumerate(chosen):
        tile = render_tile(runner, case, regions, font)
        sheet.paste(tile, ((i % SHEET_COLUMNS) * TILE_SIDE, (i // SHEET_COLUMNS) * (TILE_SIDE + CAPTION_HEIGHT)))
    return sheet


def save_small_png(sheet: Image.Image, path: Path) -> None:
    """A palette PNG (SHEET_COLOURS colours): a few hundred KB at most, readable by any viewer."""
    sheet.quantize(colors=SHEET_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def csv_rows(modality: str, cases: list[Case], data_root: Path) -> list[dict]:
    rows = []
    for case in cases:
        row = {
            "modality": modality,
            "file": case.path.relative_to(data_root / modality).as_posix(),
            "true": case.true_label,
            "predicted": case.predicted,
            "confidence": f"{case.confidence:.4f}",
            "correct": int(case.correct),
            "peak_row": case.peak[0],
            "peak_column": case.peak[1],
            "peak_region": case.peak_region,
        }
        row.update({f"share_{name}": f"{value:.4f}" for name, value in case.shares.items()})
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def installed_modalities(artifacts_dir: Path) -> list[str]:
    return [m for m in SPECS if (artifacts_dir / m / CARD_FILE).is_file()]


def run(modalities: list[str], data_root: Path, out: Path, limit: int | None, artifacts_dir: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    report, rows = {"data": "val/ of each modality", "limit_per_class": limit, "modalities": {}}, []
    for modality in modalities:
        runner = ModelRunner(artifacts_dir / modality)
        layout = SPECS[modality].heatmap_regions
        regions = layout.regions
        cases = [check_image(runner, s.path, s.label, layout) for s in sample_images(data_root, modality, limit)]
        report["modalities"][modality] = modality_report(runner, cases, layout)
        rows += csv_rows(modality, cases, data_root)
        save_small_png(contact_sheet(runner, sheet_cases(cases), regions), out / f"{modality}.png")
        if len(runner.spec.class_names) == 2:  # a two-class question (normal against pneumonia): compare both
            by_class = class_sheet_cases(cases, runner.spec.class_names)
            save_small_png(contact_sheet(runner, by_class, regions), out / f"{modality}_by_class.png")
        print(f"{modality}: {len(cases)} images, accuracy {report['modalities'][modality]['accuracy']:.3f}")
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_csv(out / "images.csv", rows)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modality", nargs="+", choices=sorted(SPECS), help="default: every installed model")
    parser.add_argument("--limit", type=int, help="at most this many val images per class, spread evenly")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS_DIR)
    args = parser.parse_args(argv)
    modalities = args.modality or installed_modalities(args.artifacts)
    run(modalities, args.data_root, args.out, args.limit, args.artifacts)


if __name__ == "__main__":
    main()
