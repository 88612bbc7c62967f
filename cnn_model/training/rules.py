"""Choosing a card's decision rule from data: the prevalence weights and their power, and the threshold.

What the rule does when served is cnn_model.decision (DecisionPolicy); this module decides its numbers,
at export and rescore, from val or from the pooled out-of-fold predictions of the recipe's folds.
"""

from __future__ import annotations

import math

import numpy as np

from ..calibration import expected_calibration_error
from ..decision import DecisionPolicy, positive_indices
from ..metrics import accuracy_at_prevalence, balanced_accuracy
from ..specs import ModalitySpec


def prevalence_weights(
    spec: ModalitySpec, fit_counts: dict[str, int], training_class_weights: dict[str, float]
) -> dict[str, float] | None:
    """deployment prior / effective training prior per class, or None where the spec names no prevalence.

    The effective training prior is what the loss saw: images per class times the class weight.
    """
    if not spec.prevalence:
        return None
    names = spec.class_names
    deployed = np.array([spec.prevalence[name] for name in names], dtype=np.float64)
    trained = np.array([fit_counts[name] * training_class_weights[name] for name in names], dtype=np.float64)
    ratio = (deployed / deployed.sum()) / (trained / trained.sum())
    ratio /= ratio.max()
    return {name: round(float(w), 6) for name, w in zip(names, ratio, strict=True)}


PREVALENCE_POWERS = tuple(round(0.05 * k, 2) for k in range(21))


def prevalence_power_choice(
    spec: ModalitySpec, folds: list[dict], accuracy_target: float, balanced_target: float, source: str
) -> dict:
    """The partial prevalence correction: weights ** alpha, alpha chosen on pooled out-of-fold predictions.

    The full correction (alpha = 1) maximises accuracy at the deployment mix by pushing rare classes
    toward the common one; none (alpha = 0) serves the rebalanced network, best for balanced accuracy.
    alpha is the one with the most room on both targets: the largest smaller margin of accuracy at
    the deployment mix over accuracy_target and of balanced accuracy over balanced_target. Where both
    can be met, that meets both with the most to spare on new data (the held-out check scores both);
    where they cannot, it is the nearest miss. folds: one {"y_true", "probabilities" (calibrated
    where served so), "prevalence_weights" (alpha = 1, spec order)} per fold.
    """

    mix = np.array([spec.prevalence[name] for name in spec.class_names], dtype=np.float64)
    y = np.concatenate([f["y_true"] for f in folds])
    # Each image weighted by how much commoner its class is at the deployment mix than in these folds.
    at_mix = (mix / mix.sum() / (np.bincount(y, minlength=len(mix)) / len(y)))[y]
    table = []
    for alpha in PREVALENCE_POWERS:
        served = np.concatenate(
            [DecisionPolicy(f["prevalence_weights"] ** alpha).adjust(f["probabilities"]) for f in folds]
        )
        predicted = served.argmax(axis=1)
        accuracy = round(accuracy_at_prevalence(y, predicted, mix), 4)
        balanced = round(balanced_accuracy(y, predicted, len(mix)), 4)
        table.append(
            {
                "alpha": alpha,
                "accuracy_at_prevalence": accuracy,
                "balanced_accuracy": balanced,
                "ece_at_prevalence": expected_calibration_error(served, y, weights=at_mix),
                "margin": round(min(accuracy - accuracy_target, balanced - balanced_target), 4),
            }
        )
    best = max(table, key=lambda row: (row["margin"], row["alpha"]))
    return {
        "alpha": best["alpha"],
        "rule": (
            f"the most room on both targets (accuracy at the deployment mix >= {accuracy_target}, balanced "
            f"accuracy >= {balanced_target}: the largest smaller margin) on the pooled out-of-fold predictions "
            f"of grouped {len(folds)}-fold cross-validation ({source}, {len(y)} images)"
        ),
        "at_alpha": best,
        "full_correction": table[-1],
        "no_correction": table[0],
        "table": table,
    }


def sensitivity_threshold(probabilities: np.ndarray, y_true: np.ndarray, spec: ModalitySpec, target: float) -> float:
    """The highest threshold on P(positive classes) whose sensitivity on these labels is >= target."""
    positive_idx = positive_indices(spec)
    scores = probabilities[:, positive_idx].sum(axis=1)
    positive_scores = np.sort(scores[np.isin(y_true, positive_idx)])
    if not len(positive_scores):
        raise ValueError("no positive images to set a sensitivity threshold on")
    # Flag everything at or above the k-th lowest positive score: the other n - k are caught.
    allowed_misses = int(np.floor((1.0 - target) * len(positive_scores) + 1e-9))
    return float(positive_scores[allowed_misses])


MARGIN_CONFIDENCE = 0.95  # one-sided: the floor must hold at the lower bound of this confidence
MARGIN_STEP = 0.0025  # how finely the sensitivity aimed for is raised above the floor


def wilson_lower_bound(successes: int, n: int, confidence: float = MARGIN_CONFIDENCE) -> float:
    """One-sided lower confidence bound of a proportion (Wilson score interval)."""
    if n == 0:
        return 0.0
    z = float(_normal_quantile(confidence))
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def _normal_quantile(q: float) -> float:
    """The standard normal's q-quantile (bisection on erf; no SciPy where this runs)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def rounded_threshold(threshold: float) -> float:
    """Four decimals, rounded down: keeps every positive the exact threshold caught."""
    return math.floor(threshold * 1e4) / 1e4


def oof_threshold_decision(spec: ModalitySpec, folds: list[dict], source: str) -> dict:
    """The threshold for spec.sensitivity_target set on pooled out-of-fold predictions, and how it holds up.

    folds: one {"y_true", "served"} per cross-validation fold (served = the probabilities the served
    model would decide on, prevalence-corrected where the spec says so). Returns the decision fields:
    the threshold, its rule, and its evidence: the OOF sensitivity/specificity at it, and the rule
    cross-fitted (each fold flagged at the threshold the other folds' OOF predictions give), the
    honest estimate of what choosing a threshold this way delivers.
    """
    floor = spec.sensitivity_target
    if floor is None:
        raise ValueError(f"{spec.name}: no sensitivity_target to set a threshold for")
    if len(folds) < 2:
        raise ValueError(f"{spec.name}: a cross-validated threshold needs at least two folds, got {len(folds)}")
    positive_idx = positive_indices(spec)
    y = np.concatenate([f["y_true"] for f in folds])
    p = np.concatenate([f["served"] for f in folds])
    truth = np.isin(y, positive_idx)
    scores = p[:, positive_idx].sum(axis=1)

    def flag_figures(flags) -> dict:
        return {
            "sensitivity": round(float(np.mean(flags[truth])), 4),
            "specificity": round(float(np.mean(~flags[~truth])), 4),
        }

    def at(aim: float) -> dict:
        """The pooled threshold for sensitivity >= aim, and the same rule cross-fitted."""
        threshold = rounded_threshold(sensitivity_threshold(p, y, spec, aim))
        fold_thresholds, cross_flags = [], []
        for k, fold in enumerate(folds):
            others = [g for j, g in enumerate(folds) if j != k]
            t = rounded_threshold(
                sensitivity_threshold(
                    np.concatenate([g["served"] for g in others]),
                    np.concatenate([g["y_true"] for g in others]),
                    spec,
                    aim,
                )
            )
            fold_thresholds.append(t)
            cross_flags.append(fold["served"][:, positive_idx].sum(axis=1) >= t)
        cross_flags = np.concatenate(cross_flags)
        caught = int(cross_flags[truth].sum())
        return {
            "threshold": threshold,
            "oof": flag_figures(scores >= threshold),
            "cross_fitted": {
                **flag_figures(cross_flags),
                "sensitivity_lower_bound": round(wilson_lower_bound(caught, int(truth.sum())), 4),
                "fold_thresholds": fold_thresholds,
                "rule": "each fold flagged at the threshold set the same way on the other folds' OOF predictions",
            },
        }

    # The floor with a margin: aim for the lowest sensitivity, from the floor up, at which the one-sided lower
    # confidence bound of the cross-fitted sensitivity reaches the floor.
    at_floor = at(floor)
    aim, chosen = floor, at_floor
    while chosen["cross_fitted"]["sensitivity_lower_bound"] < floor and aim + MARGIN_STEP <= 1.0:
        aim = round(aim + MARGIN_STEP, 4)
        chosen = at(aim)
    return {
        "positive_threshold": chosen["threshold"],
        "positive_threshold_rule": (
            f"highest threshold on the summed probability of positive_classes with sensitivity >= {aim} "
            f"on the pooled out-of-fold predictions of grouped {len(folds)}-fold cross-validation ({source}, "
            f"{len(y)} images): the sensitivity floor {floor} with a margin, {aim} being the lowest aim (in steps "
            f"of {MARGIN_STEP}) whose cross-fitted sensitivity has a one-sided {MARGIN_CONFIDENCE:.0%} Wilson lower "
            f"bound at or above {floor}"
        ),
        "threshold_source": "cv_oof",
        "threshold_evidence": {
            "source": source,
            "folds": len(folds),
            "n": int(len(y)),
            "positives": int(truth.sum()),
            "negatives": int((~truth).sum()),
            "sensitivity_target": floor,
            "sensitivity_aim": aim,
            # False: even the aim of 1.0 leaves the bound under the floor (too few positives to show the margin).
            "margin_met": chosen["cross_fitted"]["sensitivity_lower_bound"] >= floor,
            "oof": chosen["oof"],
            "cross_fitted": chosen["cross_fitted"],
            "without_margin": {
                "rule": f"the highest threshold with sensitivity >= {floor} on the pooled OOF predictions",
                "threshold": at_floor["threshold"],
                "oof": at_floor["oof"],
                "cross_fitted": at_floor["cross_fitted"],
            },
        },
    }


BOUND_QUANTILE = 0.05  # a figure's lower confidence bound: this quantile of its bootstrap over groups
BOUND_ROUNDS = 2000


def grouped_bootstrap_recalls(
    y_true: np.ndarray,
    predicted: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
    rounds: int = BOUND_ROUNDS,
    seed: int = 0,
) -> np.ndarray:
    """Per-class recall in each bootstrap round (rounds x classes), resampling whole groups.

    Several images of one lesion (patient, smear) are drawn or left out together, so the spread is
    that of new groups, not of new photos of the same ones. The same seed gives the same draws for
    any `predicted`, so rules compared on one set of labels differ by their predictions only.
    """
    _, group_index = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = group_index.max() + 1
    per_group = np.zeros((n_groups, n_classes))  # images of each class in each group
    right = np.zeros((n_groups, n_classes))  # of those, predicted right
    np.add.at(per_group, (group_index, y_true), 1.0)
    np.add.at(right, (group_index, y_true), (predicted == y_true).astype(float))
    draws = np.random.default_rng(seed).integers(0, n_groups, (rounds, n_groups))
    offsets = (np.arange(rounds)[:, None] * n_groups + draws).ravel()
    multiplicity = np.bincount(offsets, minlength=rounds * n_groups).reshape(rounds, n_groups).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (multiplicity @ right) / (multiplicity @ per_group)


def prevalence_power_margin(
    spec: ModalitySpec,
    folds: list[dict],
    accuracy_target: float,
    balanced_target: float,
    source: str,
    quantile: float = BOUND_QUANTILE,
    rounds: int = BOUND_ROUNDS,
) -> dict:
    """The prevalence power whose accuracy at the deployment mix keeps its target at a lower confidence bound.

    For every alpha of PREVALENCE_POWERS on the pooled out-of-fold predictions: accuracy at the mix and
    balanced accuracy, each with its lower bound (the `quantile` of a bootstrap over groups, the same draws
    for every alpha), and the flag's threshold set again under that correction by oof_threshold_decision
    (the floor with its Wilson margin), with its cross-fitted sensitivity and specificity. The choice is
    the smallest alpha (the most recall of the rare classes) whose accuracy bound reaches accuracy_target
    while balanced accuracy stays at balanced_target out of fold and the flag keeps its floor with the
    margin; None where no alpha does: meeting one target by missing the other is no gain. folds: as for
    prevalence_power_choice, each with its "groups".
    """
    mix = np.array([spec.prevalence[name] for name in spec.class_names], dtype=np.float64)
    mix /= mix.sum()
    n_classes = len(mix)
    y = np.concatenate([f["y_true"] for f in folds])
    groups = np.concatenate([f["groups"] for f in folds])
    table = []
    for alpha in PREVALENCE_POWERS:
        served = [DecisionPolicy(f["prevalence_weights"] ** alpha).adjust(f["probabilities"]) for f in folds]
        predicted = np.concatenate(served).argmax(axis=1)
        recalls = grouped_bootstrap_recalls(y, predicted, groups, n_classes, rounds)
        flag = oof_threshold_decision(spec, [{**f, "served": p} for f, p in zip(folds, served, strict=True)], source)
        evidence = flag["threshold_evidence"]
        table.append(
            {
                "alpha": alpha,
                "accuracy_at_prevalence": round(accuracy_at_prevalence(y, predicted, mix), 4),
                "accuracy_at_prevalence_bound": round(float(np.nanquantile(recalls @ mix, quantile)), 4),
                "balanced_accuracy": round(balanced_accuracy(y, predicted, n_classes), 4),
                "balanced_accuracy_bound": round(float(np.nanquantile(recalls.mean(axis=1), quantile)), 4),
                "recall": {
                    name: round(float(np.mean(predicted[y == k] == k)), 4) for k, name in enumerate(spec.class_names)
                },
                "positive_threshold": flag["positive_threshold"],
                "flag_cross_fitted": {
                    key: evidence["cross_fitted"][key]
                    for key in ("sensitivity", "specificity", "sensitivity_lower_bound")
                },
                "flag_margin_met": evidence["margin_met"],
            }
        )
    qualifying = [
        row
        for row in table
        if row["accuracy_at_prevalence_bound"] >= accuracy_target
        and row["balanced_accuracy"] >= balanced_target
        and row["flag_margin_met"]
    ]
    return {
        "alpha": qualifying[0]["alpha"] if qualifying else None,
        "rule": (
            f"the smallest alpha whose accuracy at the deployment mix has a lower bound (the {quantile:.0%} "
            f"quantile of {rounds} bootstrap rounds over groups) of at least {accuracy_target}, with balanced "
            f"accuracy >= {balanced_target} and the flag's floor kept with its margin, on the pooled out-of-fold "
            f"predictions of grouped {len(folds)}-fold cross-validation ({source}, {len(y)} images, "
            f"{len(np.unique(groups))} groups)"
        ),
        "table": table,
    }


def derive_decision(
    spec: ModalitySpec,
    provenance: dict,
    val_probabilities: np.ndarray,
    y_val: np.ndarray,
    oof_folds: list[dict] | None = None,
    oof_source: str | None = None,
    calibration: dict | None = None,
    prevalence_power: dict | None = None,
) -> dict | None:
    """The card's `decision` block for raw network probabilities on val, or None for the plain rule.

    Where the spec's threshold_source is "cv_oof", the threshold comes from oof_folds (see
    oof_threshold_decision; oof_source names them) and val only checks it. calibration: the result of
    cnn_model.calibration.oof_temperature or val_temperature plus "fitted_on" (what it was fitted on, in
    words), whose temperature the served probabilities then carry. prevalence_power: the result of
    prevalence_power_choice; the class weights are then raised to its alpha (oof_folds' "served" too).
    """
    weights = prevalence_weights(spec, provenance["data"]["counts"]["fit"], provenance["class_weights"])
    if weights is not None and prevalence_power is not None:
        alpha = prevalence_power["alpha"]
        weights = {name: round(w**alpha, 6) for name, w in weights.items()}
    if weights is None and spec.sensitivity_target is None and calibration is None:
        return None
    decision: dict = {}
    temperature = None
    if calibration is not None:
        temperature = calibration["temperature"]
        decision.update(
            temperature=temperature,
            temperature_rule=(
                "class probabilities = softmax(logits / temperature); temperature minimises the negative "
                f"log-likelihood of {calibration['fitted_on']}"
            ),
            calibration_evidence={
                key: calibration[key]
                for key in (
                    "n",
                    "ece_before",
                    "ece_after",
                    "ece_cross_fitted",
                    "fold_temperatures",
                    "nll_before",
                    "nll_after",
                )
            },
        )
    if weights is not None:
        decision.update(
            class_weights=weights,
            class_weights_rule=(
                "probabilities x (deployment prevalence / training prevalence), renormalised; "
                "training prevalence = fit images per class x training class weight"
            ),
            deployment_prevalence={name: spec.prevalence[name] for name in spec.class_names},
            deployment_prevalence_source=spec.prevalence_source,
        )
        if prevalence_power is not None:
            decision.update(
                prevalence_power=prevalence_power["alpha"],
                class_weights_rule=(
                    f"probabilities x (deployment prevalence / training prevalence) ** {prevalence_power['alpha']}, "
                    "renormalised; training prevalence = fit images per class x training class weight"
                ),
                prevalence_power_rule=prevalence_power["rule"],
                prevalence_power_evidence={
                    k: prevalence_power[k] for k in ("at_alpha", "full_correction", "no_correction", "table")
                },
            )
    policy = DecisionPolicy(
        np.array([weights[n] for n in spec.class_names]) if weights else None, temperature=temperature
    )
    if spec.sensitivity_target is not None and spec.threshold_source == "cv_oof":
        if not oof_folds:
            raise ValueError(f"{spec.name}: threshold_source is cv_oof but no out-of-fold predictions were given")
        decision.update(oof_threshold_decision(spec, oof_folds, oof_source or "cross-validation"))
    elif spec.sensitivity_target is not None:
        threshold = sensitivity_threshold(policy.adjust(val_probabilities), y_val, spec, spec.sensitivity_target)
        decision.update(
            positive_threshold=rounded_threshold(threshold),
            positive_threshold_rule=(
                f"highest threshold on the summed probability of positive_classes with "
                f"sensitivity >= {spec.sensitivity_target} on val"
            ),
        )
    return decision
