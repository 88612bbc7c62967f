"""Prediction sets with a coverage guarantee: which findings the model cannot rule out for one image.

Class-conditional (Mondrian) split-conformal prediction. The score of class k for an image is
1 - p_k, p being the served probabilities (after the card's temperature and prevalence correction,
cnn_model.decision). Each class has a threshold: the ceil((n_k + 1) * coverage)-th smallest score of
the true class among the n_k calibration images of that class, every one of them predicted by a model
that never trained on it. A class is in an image's set when its score is at most its threshold, so an
image of class k has its class in the set with probability at least `coverage`, class by class, as long
as the images served are exchangeable with the calibration images. The thresholds are fitted by
cnn_model.training.conformal and travel with the model version in its card (`conformal`).

A set the thresholds leave empty (no class is as typical as 1 - coverage of its own images) is given
the two most probable classes: the model is unsure which it is, and saying one would claim more.

No TensorFlow, no Flask here: the serving runtime uses this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .card import ArtifactError, ModelCard
from .specs import ModalitySpec

CLEAR = "clear"  # the set holds one finding
UNCERTAIN = "uncertain"  # the set holds more than one
CERTAINTIES = (CLEAR, UNCERTAIN)
EMPTY_SET_FILL = 2  # how many of the most probable classes an empty set is given


def certainty_of(prediction_set: list[str] | tuple[str, ...]) -> str:
    return CLEAR if len(prediction_set) == 1 else UNCERTAIN


@dataclass(frozen=True)
class PredictionSets:
    coverage: float  # e.g. 0.9: each class's images have their class in the set at least this often
    thresholds: np.ndarray  # per class in spec order: class k is in the set when 1 - p_k <= thresholds[k]

    @classmethod
    def from_card(cls, card: ModelCard, spec: ModalitySpec) -> PredictionSets | None:
        """The card's conformal thresholds in spec order; None where the card has none."""
        if card.conformal is None:
            return None
        thresholds = card.conformal.thresholds
        missing = [name for name in spec.class_names if name not in thresholds]
        if missing:
            raise ArtifactError(f"the card's prediction sets name no threshold for {', '.join(missing)}")
        return cls(card.conformal.coverage, np.array([thresholds[name] for name in spec.class_names], dtype=float))

    def members(self, probabilities: np.ndarray) -> np.ndarray:
        """Which classes are in each image's conformal set (rows of served probabilities), before any filling."""
        return (1.0 - probabilities) <= self.thresholds + 1e-12

    def served(self, probabilities: np.ndarray) -> np.ndarray:
        """members, with an empty set given the EMPTY_SET_FILL most probable classes."""
        members = self.members(probabilities)
        empty = ~members.any(axis=-1)
        if empty.any():
            top = np.argsort(-probabilities[empty], axis=-1)[:, :EMPTY_SET_FILL]
            filled = np.zeros_like(members[empty])
            np.put_along_axis(filled, top, True, axis=-1)
            members[empty] = filled
        return members

    def prediction_set(self, probabilities: np.ndarray, class_names: tuple[str, ...]) -> list[str]:
        """One image's set as class names, most probable first."""
        members = self.served(probabilities[None])[0]
        order = np.argsort(-probabilities, kind="stable")
        return [class_names[k] for k in order if members[k]]
