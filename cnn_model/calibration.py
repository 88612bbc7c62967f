"""Confidence that means what it says: temperature scaling fitted on out-of-fold predictions.

A network fine-tuned with cross-entropy on a few hundred images ends up overconfident: cervical
fold models said 0.9 where they were right 0.6-0.8 of the time. Dividing the logits by one
temperature T > 1 (fitted by minimising the negative log-likelihood of held-out labels) softens
every answer alike, so it never changes the top-1 class, and brings the stated confidence back
in line with the hit rate. The temperature is fitted on the pooled out-of-fold predictions of the
recipe's grouped cross-validation, and scored there cross-fitted (each fold calibrated with the
temperature the other folds give), so val stays a check.

Expected calibration error (ECE): the shown label's confidence in 10 equal-width bins, the gap
between mean confidence and accuracy per bin, weighted by the bin's share of images.

No TensorFlow here: the serving runtime applies the temperature through cnn_model.decision.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 10


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities the network would give with its logits divided by T."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    picked = probabilities[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def _bins(probabilities, y_true, bins, weights):
    """(low, high, images, weight share, mean confidence, accuracy) per bin, unrounded."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    weights = np.ones(len(confidence)) if weights is None else np.asarray(weights, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (confidence > low) & (confidence <= high) if k else (confidence >= low) & (confidence <= high)
        w = weights[inside]
        filled = inside.any() and w.sum() > 0
        rows.append(
            (
                low,
                high,
                int(inside.sum()),
                float(w.sum() / weights.sum()),
                float(np.average(confidence[inside], weights=w)) if filled else None,
                float(np.average(correct[inside], weights=w)) if filled else None,
            )
        )
    return rows


def reliability_bins(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS, weights: np.ndarray | None = None
) -> list[dict]:
    """Per confidence bin of the shown (top-1) label: its range, images, mean confidence and accuracy.

    weights: per image (e.g. deployment prior / sample prior of its class, to score a rebalanced set at
    the mix the service sees); "weight" is then the bin's share of the total weight.
    """

    def r(value):
        return None if value is None else round(value, 4)

    return [
        {
            "low": round(low, 2),
            "high": round(high, 2),
            "n": n,
            "weight": r(share),
            "confidence": r(conf),
            "accuracy": r(acc),
        }
        for low, high, n, share, conf, acc in _bins(probabilities, y_true, bins, weights)
    ]


def expected_calibration_error(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS, weights: np.ndarray | None = None
) -> float:
    rows = _bins(probabilities, y_true, bins, weights)
    return round(sum(share * abs(conf - acc) for _, _, n, share, conf, acc in rows if conf is not None), 4)
