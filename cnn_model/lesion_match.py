"""Same lesion or another? A distance between two photos of skin lesions, from the gate's features (no TensorFlow).

The skin model's LiteRT graph gives out only its logits and class activation maps, so its penultimate
features are not reachable at serving time; the modality gate's feature network (160 numbers per image,
cnn_model.gate) is. Those numbers, standardised, are projected onto the few directions that separate
lesions most relative to how much photos of one lesion vary (linear discriminant analysis fitted on
HAM10000's lesions with several images); the distance is the Euclidean distance there. Photos farther
apart than the threshold (set so that most pairs of one lesion fall within it) look like different
lesions. Fitted by cnn_model.training.lesion_match.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .gate import FeatureNetwork, preprocess_for_gate
from .preprocessing import ImageSource

LESION_MATCH_FILE = "lesion_match.npz"  # kept in the gate's folder: it reads the gate's features
EMBEDDING_DTYPE = np.dtype("<f2")  # a stored embedding: a few dozen half-precision numbers


@dataclass(frozen=True)
class LesionMatcher:
    """The projection of gate features to a lesion embedding, and the distance beyond which lesions differ."""

    modality: str  # the modality whose photos it compares
    mean: np.ndarray  # (D,) of the gate features it was fitted on
    scale: np.ndarray  # (D,) their standard deviations
    projection: np.ndarray  # (D, K): one photo of a lesion to the next varies by about 1 along each column
    threshold: float  # a distance above this: the photos look like different lesions
    same_lesion_share: float  # the share of one lesion's photo pairs the threshold was set to keep within

    def embed(self, features: np.ndarray) -> np.ndarray:
        """(D,) gate features -> (K,) lesion embedding."""
        return ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.projection

    def embed_image(self, network: FeatureNetwork, source: ImageSource) -> np.ndarray:
        """The lesion embedding of a photo, read by the gate's feature network."""
        return self.embed(network.features(preprocess_for_gate(source)[None])[0])

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))

    def looks_different(self, distance: float) -> bool:
        return distance > self.threshold

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            modality=np.array(self.modality),
            mean=self.mean.astype(np.float64),
            scale=self.scale.astype(np.float64),
            projection=self.projection.astype(np.float64),
            threshold=np.array(self.threshold),
            same_lesion_share=np.array(self.same_lesion_share),
        )

    @classmethod
    def load(cls, path: Path) -> LesionMatcher:
        with np.load(path) as data:
            return cls(
                modality=str(data["modality"]),
                mean=data["mean"],
                scale=data["scale"],
                projection=data["projection"],
                threshold=float(data["threshold"]),
                same_lesion_share=float(data["same_lesion_share"]),
            )


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    return np.asarray(embedding).astype(EMBEDDING_DTYPE).tobytes()


def embedding_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=EMBEDDING_DTYPE).astype(np.float64)
