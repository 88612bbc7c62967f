"""Inference latency of every shipped model under LiteRT: preprocessing + forward pass.

Usage: python bench/inference.py [--repeats N] [--threads T] [--data-root ../shared/datasets]
Prints one line per modality with median / p95 milliseconds per image (batch 1), measured from a
decoded image (what the upload validator hands over) to class probabilities, and again with the
class-activation heatmap rendered as PNG (what a heatmap's first view adds; an upload does not
render it). With --seed-baseline (needs TensorFlow) it also times, in the same run, the serving
pattern of the original single-purpose apps: Keras `model.predict` per request on their
two-convolution 128 px CNN (../shared/bench/seed_pattern).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnn_model.preprocessing import load_image, preprocess_for_model  # noqa: E402
from cnn_model.runtime import ModelRegistry  # noqa: E402


def sample_images(data_root: Path, modality: str, count: int):
    folder = data_root / modality / "val"
    paths = sorted(folder.glob("*/*"))[:: max(1, len(list(folder.glob("*/*"))) // count)][:count]
    if paths:
        return [load_image(p) for p in paths]
    from PIL import Image  # no dataset beside the checkout: time on synthetic noise instead

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (450, 600, 3), dtype=np.uint8)) for _ in range(count)]


def time_ms(fn, items, repeats: int) -> list[float]:
    for item in (items * 20)[:20]:
        fn(item)  # warm-up: the first calls pay for allocation and caches
    timings = []
    for _ in range(repeats):
        for item in items:
            start = time.perf_counter()
            fn(item)
            timings.append((time.perf_counter() - start) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed-baseline", action="store_true", help="also time Keras model.predict (seed pattern)")
    parser.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets")
    args = parser.parse_args()

    registry = ModelRegistry(num_threads=args.threads)
    print(f"LiteRT, batch 1, {args.threads} thread(s), {args.images} images x {args.repeats} repeats")
    print(f"{'modality':<19}{'input':>7}{'size MB':>9}{'median ms':>11}{'p95 ms':>9}{'+heatmap median ms':>20}")
    for modality in registry.modalities:
        runner = registry.get(modality)
        images = sample_images(args.data_root, modality, args.images)
        plain = time_ms(
            lambda im, runner=runner: runner.run(preprocess_for_model(im, runner.spec)[None]), images, args.repeats
        )
        heat = time_ms(
            lambda im, runner=runner: runner.predict(im, heatmap=True).activation_map.render(im),
            images,
            max(1, args.repeats // 5),
        )
        print(
            f"{modality:<19}{runner.spec.input_size:>7}{runner.card.artifact.bytes / 1e6:>9.2f}"
            f"{statistics.median(plain):>11.2f}{np.percentile(plain, 95):>9.2f}{statistics.median(heat):>20.2f}"
        )
    if args.seed_baseline:
        images = sample_images(args.data_root, "skin_lesion", args.images)
        timings = time_ms(seed_pattern_predictor(), images, args.repeats)
        print(
            f"{'seed pattern (Keras model.predict, 128 px two-conv CNN)':<56}"
            f"median {statistics.median(timings):.2f} ms, p95 {np.percentile(timings, 95):.2f} ms"
        )
    return 0


def seed_pattern_predictor():
    """The original apps' per-request path: resize to 128, scale to [0, 1], model.predict on one image."""
    import keras

    size = 128
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(9, activation="softmax"),
        ]
    )

    def predict(image):
        x = np.asarray(image.convert("RGB").resize((size, size)), dtype="float32")[None] / 255.0
        return model.predict(x, verbose=0)

    return predict


if __name__ == "__main__":
    sys.exit(main())
