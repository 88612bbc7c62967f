"""The modality gate: which of our kinds of image is this, or none of them? (no TensorFlow)

A small network (EfficientNet-Lite0 cut after block 4, 96 px) turns any image into a 160-number
description (mean and max of each feature channel). For each modality the gate keeps the mean and
the (shrunk) covariance of its training images' descriptions; an image's Mahalanobis distance to
each modality says how far it lies from that modality's images. The nearest modality, measured
against its own threshold, is the answer; an image beyond every modality's threshold is none of
ours. Thresholds sit at a high percentile of distances of held-out training images (cross-fitted),
so no foreign image was needed to set them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from .card import CARD_FILE, MODEL_FILE, ArtifactError, GateCard
from .interpreter import InterpreterPool
from .preprocessing import ImageSource, load_image

GATE_DIR_NAME = "gate"  # the gate's folder among the model artifacts
GATE_INPUT_SIZE = 96
STATS_FILE = "stats.npz"


def preprocess_for_gate(source: ImageSource) -> np.ndarray:
    """Any image -> the gate's input: float32 (96, 96, 3), 0..255 RGB, stretched. Shared by training and serving."""
    image = load_image(source).convert("RGB")
    # reducing_gap: a cheap box reduction first, then bilinear; same output quality at a fraction of the time.
    image = image.resize((GATE_INPUT_SIZE, GATE_INPUT_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image, dtype=np.float32)


@dataclass(frozen=True)
class GateStatistics:
    """Per modality: the mean description, a whitening matrix and the sorted held-out distances."""

    modalities: tuple[str, ...]
    means: np.ndarray  # (M, D)
    whitening: np.ndarray  # (M, D, D): Cholesky factor L of the inverse covariance, d = |L^T (x - mean)|
    thresholds: np.ndarray  # (M,): the distance beyond which an image is not of that modality
    held_out_distances: tuple[np.ndarray, ...]  # per modality, sorted ascending

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N, D) descriptions -> (N, M) Mahalanobis distances to each modality."""
        centred = features[:, None, :] - self.means[None]  # (N, M, D)
        projected = np.einsum("nmd,mde->nme", centred, self.whitening)
        return np.sqrt(np.square(projected).sum(axis=-1))

    def typicality(self, distances: np.ndarray) -> np.ndarray:
        """(N, M) distances -> the share of each modality's held-out images lying at least as far (0..1)."""
        scores = np.empty_like(distances)
        for m, held_out in enumerate(self.held_out_distances):
            farther = len(held_out) - np.searchsorted(held_out, distances[:, m], side="left")
            scores[:, m] = farther / len(held_out)
        return scores

    def decide(self, distances: np.ndarray) -> list[str | None]:
        """The modality each image is nearest to (relative to that modality's threshold), or None beyond all."""
        relative = distances / self.thresholds[None]
        nearest = relative.argmin(axis=1)
        return [self.modalities[m] if relative[i, m] <= 1.0 else None for i, m in enumerate(nearest)]

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            modalities=np.array(self.modalities),
            means=self.means.astype(np.float32),
            whitening=self.whitening.astype(np.float32),
            thresholds=self.thresholds.astype(np.float64),
            **{
                f"held_out_{m}": d.astype(np.float32)
                for m, d in zip(self.modalities, self.held_out_distances, strict=True)
            },
        )

    @classmethod
    def load(cls, path: Path) -> GateStatistics:
        with np.load(path) as data:
            modalities = tuple(str(m) for m in data["modalities"])
            return cls(
                modalities=modalities,
                means=data["means"].astype(np.float64),
                whitening=data["whitening"].astype(np.float64),
                thresholds=data["thresholds"],
                held_out_distances=tuple(np.sort(data[f"held_out_{m}"].astype(np.float64)) for m in modalities),
            )


@dataclass(frozen=True)
class GateResult:
    modality: str | None  # one of ours, or None: not an image of any kind we read
    scores: dict[str, float]  # per modality, 0..1: how typical the image is of that modality's images


class FeatureNetwork:
    """The gate's exported feature network on LiteRT: (N, 96, 96, 3) inputs -> (N, D) descriptions."""

    def __init__(self, model_bytes: bytes, num_threads: int = 1) -> None:
        self._model_bytes = model_bytes
        self.num_threads = num_threads
        self._interpreters = InterpreterPool(self._new_interpreter)

    def _new_interpreter(self) -> tuple[Interpreter, int, int]:
        interpreter = Interpreter(model_content=self._model_bytes, num_threads=self.num_threads)
        interpreter.allocate_tensors()
        return interpreter, interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def features(self, batch: np.ndarray) -> np.ndarray:
        rows = []
        with self._interpreters.borrow() as (interpreter, input_index, output_index):
            for x in batch:
                interpreter.set_tensor(input_index, x[None].astype(np.float32, copy=False))
                interpreter.invoke()
                rows.append(interpreter.get_tensor(output_index)[0].astype(np.float64))
        return np.stack(rows)


class ModalityGate:
    """The exported gate: its feature network and the per-modality statistics, checked against the card."""

    def __init__(self, artifact_dir: Path, num_threads: int = 1) -> None:
        artifact_dir = Path(artifact_dir)
        paths = {name: artifact_dir / name for name in (MODEL_FILE, STATS_FILE, CARD_FILE)}
        missing = [name for name, path in paths.items() if not path.is_file()]
        if missing:
            raise ArtifactError(f"{artifact_dir}: missing {', '.join(missing)}")
        self.card = GateCard.load(paths[CARD_FILE])
        for name, expected in self.card.artifact.sha256.items():
            actual = hashlib.sha256(paths[name].read_bytes()).hexdigest()
            if actual != expected:
                raise ArtifactError(f"{paths[name]}: sha256 {actual} does not match the gate's card")
        self.statistics = GateStatistics.load(paths[STATS_FILE])
        self.network = FeatureNetwork(paths[MODEL_FILE].read_bytes(), num_threads)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.statistics.modalities

    def detect(self, source: ImageSource) -> GateResult:
        """Which of our modalities the image is, or None; with a score per modality."""
        return self.detect_batch([source])[0]

    def detect_batch(self, sources: Sequence[ImageSource]) -> list[GateResult]:
        """detect() for several images at once, with the same answers (one interpreter borrowed for all)."""
        if not sources:
            return []
        distances = self.statistics.distances(
            self.network.features(np.stack([preprocess_for_gate(s) for s in sources]))
        )
        scores = self.statistics.typicality(distances)
        return [
            GateResult(
                modality=modality,
                scores={m: round(float(s), 4) for m, s in zip(self.modalities, row, strict=True)},
            )
            for modality, row in zip(self.statistics.decide(distances), scores, strict=True)
        ]
