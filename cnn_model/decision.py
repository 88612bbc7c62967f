"""How the network's class probabilities become the served answer.

Three optional steps, all fixed at export and written into the model card, so the runtime,
the CLI, evaluation and the card's metrics all decide the same way:

1. Calibration: the logits divided by a temperature (cnn_model.calibration), so a stated 0.8 is
   right about 8 times in 10; fitted on cross-validation out-of-fold predictions, or for a
   distilled student, which has none of its own, on its val predictions (spec calibration_source).
   It never changes the top-1 class; it comes first because the other steps assume honest
   probabilities.
2. Prevalence correction. A network trained on a rebalanced set (a capped majority class,
   class weights) believes every class is about equally common. Where the population the
   service sees is known, the probabilities are multiplied by deployment prior / training
   prior and renormalised (the Bayes correction for a change of class priors), or by that ratio
   to a power alpha < 1 chosen on out-of-fold predictions (prevalence_power_choice), which
   trades a little accuracy at the deployment mix for recall of the rare classes.
3. An operating threshold on the summed probability of the malignant/abnormal classes, chosen
   for a target sensitivity, so the flag a clinician acts on does not depend on which single
   class wins the argmax. Without one, the flag follows the top-1 class. The spec's
   threshold_source says where it is chosen: on val ("val"), or on the pooled out-of-fold
   predictions of the grouped cross-validation that checked the recipe ("cv_oof"; see
   oof_threshold_decision), which leaves val an untouched check of the threshold.

No TensorFlow here: the serving runtime uses this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calibration import apply_temperature
from .card import CardDecision, ModelCard
from .specs import ModalitySpec


@dataclass(frozen=True)
class DecisionPolicy:
    class_weights: np.ndarray | None = None  # per class, in spec order; None: probabilities as the network gives them
    positive_threshold: float | None = None  # None: positive when the top-1 class is a positive class
    temperature: float | None = None  # None: the network's own confidence

    @classmethod
    def from_card(cls, card: ModelCard, spec: ModalitySpec) -> DecisionPolicy:
        decision = card.decision or CardDecision()
        weights = decision.class_weights
        return cls(
            class_weights=np.array([weights[name] for name in spec.class_names]) if weights else None,
            positive_threshold=decision.positive_threshold,
            temperature=decision.temperature,
        )

    def adjust(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated, prevalence-corrected probabilities (rows sum to 1)."""
        if self.temperature is not None:
            probabilities = apply_temperature(probabilities, self.temperature)
        if self.class_weights is None:
            return probabilities
        weighted = probabilities * self.class_weights
        return weighted / weighted.sum(axis=-1, keepdims=True)

    def positive(self, probabilities: np.ndarray, spec: ModalitySpec) -> np.ndarray:
        """Malignant/abnormal flags for adjusted probabilities (one row per image)."""
        positive_idx = positive_indices(spec)
        if self.positive_threshold is None:
            return np.isin(probabilities.argmax(axis=-1), positive_idx)
        return probabilities[..., positive_idx].sum(axis=-1) >= self.positive_threshold

    def describe(self) -> str:
        if self.positive_threshold is None:
            return "positive when the top-1 class is one of positive_classes"
        return f"positive when the summed probability of positive_classes is at least {self.positive_threshold}"


def positive_indices(spec: ModalitySpec) -> list[int]:
    return [spec.class_names.index(name) for name in spec.positive_classes]
