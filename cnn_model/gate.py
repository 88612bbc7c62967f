"""The modality gate: which of our kinds of image is this, or none of them? (no TensorFlow)

A small network (EfficientNet-Lite0 cut after block 4, 96 px) turns any image into a 160-number
description (mean and max of each feature channel). For each modality the gate keeps the mean and
the (shrunk) covariance of its training images' descriptions; an image's Mahalanobis distance to
each modality says how far it lies from that modality's images. The nearest modality, measured
against its own threshold, is the answer; an image beyond every modality's threshold is none of
ours. Thresholds sit at a high percentile of distances of held-out training images (cross-fitted),
so no foreign image was needed to set them.

Since 1.1.0 the statistics also hold a near-domain boundary: one more Gaussian, fitted on close-ups of
pictures that are none of our kinds (animals, faces, textures), and per modality a cut-off on
d_modality² − d_foreign² (a log-likelihood ratio up to constants). An image the rule above gives to a
modality is refused when it lies that much nearer to the foreign close-ups. Statistics without the
boundary (gate 1.0.0) decide as before.
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
class ForeignBoundary:
    """The near-domain refusal: a Gaussian of foreign close-ups and, per modality, a cut-off on d_m² − d_foreign²."""

    mean: np.ndarray  # (D,)
    whitening: np.ndarray  # (D, D): as GateStatistics.whitening, for the foreign close-ups
    cutoffs: np.ndarray  # (M,): refuse an image given to modality m when d_m² − d_foreign² exceeds cutoffs[m]

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N, D) descriptions -> (N,) Mahalanobis distances to the foreign close-ups."""
        return np.sqrt(np.square((features - self.mean) @ self.whitening).sum(axis=-1))


@dataclass(frozen=True)
class GateStatistics:
    """Per modality: the mean description, a whitening matrix and the sorted held-out distances."""

    modalities: tuple[str, ...]
    means: np.ndarray  # (M, D)
    whitening: np.ndarray  # (M, D, D): Cholesky factor L of the inverse covariance, d = |L^T (x - mean)|
    thresholds: np.ndarray  # (M,): the distance beyond which an image is not of that modality
    held_out_distances: tuple[np.ndarray, ...]  # per modality, sorted ascending
    foreign: ForeignBoundary | None = None  # the near-domain boundary (1.1.0); None: distances alone decide

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N, D) descriptions -> (N, M) Mahalanobis distances to each modality."""
        centred = features[:, None, :] - self.means[None]  # (N, M, D)
        projected = np.einsum("nmd,mde->nme", centred, self.whitening)
        return np.sqrt(np.square(projected).sum(axis=-1))

    def foreign_distances(self, features: np.ndarray) -> np.ndarray | None:
        """(N, D) descriptions -> (N,) distances to the foreign close-ups, or None without the boundary."""
        return None if self.foreign is None else self.foreign.distances(features)

    def typicality(self, distances: np.ndarray) -> np.ndarray:
        """(N, M) distances -> the share of each modality's held-out images lying at least as far (0..1)."""
        scores = np.empty_like(distances)
        for m, held_out in enumerate(self.held_out_distances):
            farther = len(held_out) - np.searchsorted(held_out, distances[:, m], side="left")
            scores[:, m] = farther / len(held_out)
        return scores

    def decide(self, distances: np.ndarray, foreign_distances: np.ndarray | None = None) -> list[str | None]:
        """The modality each image is nearest to (relative to that modality's threshold), or None beyond all.

        With the near-domain boundary, an image given to modality m is also None when
        d_m² − d_foreign² exceeds m's cut-off (foreign_distances from foreign_distances()).
        """
        relative = distances / self.thresholds[None]
        nearest = relative.argmin(axis=1)
        accepted = relative[np.arange(len(nearest)), nearest] <= 1.0
        if self.foreign is not None:
            if foreign_distances is None:
                raise ValueError("these statistics have a near-domain boundary: pass foreign_distances")
            chosen = distances[np.arange(len(nearest)), nearest]
            accepted &= np.square(chosen) - np.square(foreign_distances) <= self.foreign.cutoffs[nearest]
        return [self.modalities[m] if ok else None for m, ok in zip(nearest, accepted, strict=True)]

    def decide_features(self, features: np.ndarray) -> list[str | None]:
        """decide() straight from (N, D) descriptions."""
        return self.decide(self.distances(features), self.foreign_distances(features))

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
            **(
                {}
                if self.foreign is None
                else {
                    "foreign_mean": self.foreign.mean.astype(np.float32),
                    "foreign_whitening": self.foreign.whitening.astype(np.float32),
                    "foreign_cutoffs": self.foreign.cutoffs.astype(np.float64),
                }
            ),
        )

    @classmethod
    def load(cls, path: Path) -> GateStatistics:
        with np.load(path) as data:
            modalities = tuple(str(m) for m in data["modalities"])
            foreign = None
            if "foreign_mean" in data.files:  # gate 1.1.0 on; older statistics have no boundary
                foreign = ForeignBoundary(
                    mean=data["foreign_mean"].astype(np.float64),
                    whitening=data["foreign_whitening"].astype(np.float64),
                    cutoffs=data["foreign_cutoffs"],
                )
            return cls(
                modalities=modalities,
                means=data["means"].astype(np.float64),
                whitening=data["whitening"].astype(np.float64),
                thresholds=data["thresholds"],
                held_out_distances=tuple(np.sort(data[f"held_out_{m}"].astype(np.float64)) for m in modalities),
                foreign=foreign,
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
        features = self.network.features(np.stack([preprocess_for_gate(s) for s in sources]))
        distances = self.statistics.distances(features)
        decided = self.statistics.decide(distances, self.statistics.foreign_distances(features))
        scores = self.statistics.typicality(distances)
        return [
            GateResult(
                modality=modality,
                scores={m: round(float(s), 4) for m, s in zip(self.modalities, row, strict=True)},
            )
            for modality, row in zip(decided, scores, strict=True)
        ]
