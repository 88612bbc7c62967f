"""Score an exported artifact and write what its model card says about it (no TensorFlow).

Export calls this after writing the model file; `python -m cnn_model rescore` calls it again
for a shipped artifact when the decision rule or the evaluation changes, leaving the model
file (and its sha256) as it is.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..calibration import ECE_BINS, apply_temperature, expected_calibration_error, reliability_bins
from ..card import CARD_FILE, ModelCard
from ..data import list_class_folder, split_test_slice
from ..decision import DecisionPolicy
from ..evaluation import evaluate_runner, write_plots, write_reliability_plot
from ..preprocessing import load_image, preprocess_for_model
from ..runtime import ModelRunner
from ..specs import ModalitySpec
from .calibration import oof_temperature, val_temperature
from .conformal import conformal_section
from .crossval.folds import N_FOLDS
from .crossval.summary import load_candidate, summarise
from .rules import derive_decision, oof_threshold_decision, prevalence_power_choice

LATENCY_IMAGES = 40


def score_artifact(
    artifact_dir: Path, *, data_root: Path, bootstrap_rounds: int = 1000, measure_latency: bool = True
) -> ModelCard:
    """Derive the decision rule on val, evaluate val and the test slice, write metrics and plots."""
    artifact_dir = Path(artifact_dir)
    card_path = artifact_dir / CARD_FILE
    card = ModelCard.load(card_path).to_json()  # a JSON object here, while its sections are rebuilt
    runner = ModelRunner(artifact_dir)
    runner.decision = DecisionPolicy()  # the rule is derived from the network's own probabilities
    spec = runner.spec
    dataset_dir = Path(data_root) / spec.name
    _, test_samples = split_test_slice(list_class_folder(dataset_dir / "train", spec))
    if not any(card["training"]["data"]["counts"]["test_slice"].values()):
        test_samples = []  # refit on all of train/: the slice is training data now
    val_samples = list_class_folder(dataset_dir / "val", spec)

    network_val = np.concatenate([runner.run(preprocess_for_model(s.path, spec)[None])[0] for s in val_samples])
    y_val = np.array([spec.class_names.index(s.label) for s in val_samples])
    card.pop("decision", None)
    cv_folds, cv_source = cross_validation_folds(spec)
    oof_calibration, prevalence_power, oof_serving = oof_decision_rules(spec, cv_folds, cv_source)
    if oof_serving:
        cv_folds, _ = cross_validation_folds(spec, **oof_serving)
    calibration = served_calibration(spec, oof_calibration, cv_source, network_val, y_val, val_samples)
    decision = derive_decision(
        spec,
        card["training"],
        network_val,
        y_val,
        oof_folds=cv_folds,
        oof_source=cv_source,
        calibration=calibration,
        prevalence_power=prevalence_power,
    )
    if decision:
        card["decision"] = decision
    runner.decision = DecisionPolicy.from_card(ModelCard.from_json(card, str(card_path)), spec)

    evaluations = {
        "val": evaluate_runner(
            runner, val_samples, bootstrap_rounds=bootstrap_rounds, probabilities=runner.decision.adjust(network_val)
        )
    }
    if test_samples:
        evaluations["test slice"] = evaluate_runner(runner, test_samples, bootstrap_rounds=bootstrap_rounds)
    card["metrics"] = {split.replace(" ", "_"): result["metrics"] for split, result in evaluations.items()}
    card["plots"] = write_plots(artifact_dir, spec, evaluations)
    card.pop("calibration", None)
    card["calibration"] = calibration_section(calibration, oof_calibration, network_val, evaluations["val"])
    card["plots"]["reliability"] = write_reliability_plot(artifact_dir, spec, card["calibration"])
    if measure_latency or "median_ms_one_thread" not in card["serving"]:
        card["serving"]["median_ms_one_thread"] = median_latency_ms(runner, val_samples[:LATENCY_IMAGES])
    card["targets"] = asdict(spec.targets)
    card.pop("cross_validation", None)
    if cv_folds:
        card["cross_validation"] = cross_validation_figures(spec, **oof_serving)
    card.pop("distillation", None)
    if spec.recipe.distilled_from and cv_folds:
        card["distillation"] = distillation_figures(runner, cv_folds, cv_source, dataset_dir, val_samples, card)
    card.pop("held_out_checks", None)
    if spec.held_out_checks:
        card["held_out_checks"] = held_out_checks(spec, card["version"])
    card["limitations"] = limitations(spec, card["metrics"])
    card.pop("conformal", None)
    if cv_folds:
        card["conformal"] = conformal_figures(
            spec, cv_folds, cv_source, oof_serving, val_samples, runner.decision.adjust(network_val), y_val
        )
    scored = ModelCard.from_json(card, str(card_path))
    write_card(card_path, scored)
    return scored


def oof_decision_rules(spec: ModalitySpec, cv_folds, cv_source) -> tuple[dict | None, dict | None, dict]:
    """(calibration, prevalence power, how OOF predictions are served) chosen on the recipe's OOF predictions.

    The threshold is then set on OOF probabilities served the same way: calibrated where the card
    calibrates, and with the partial prevalence correction where the spec chooses one.
    """
    calibration, prevalence_power, serving = None, None, {}
    if spec.calibration_source is not None and cv_folds:
        calibration = oof_temperature(cv_folds)
        serving["temperature"] = calibration["temperature"]
    if spec.prevalence_power_source == "cv_oof":
        temperature = serving.get("temperature", 1.0)
        calibrated = [{**f, "probabilities": apply_temperature(f["probabilities"], temperature)} for f in cv_folds]
        prevalence_power = prevalence_power_choice(
            spec, calibrated, spec.targets.accuracy, spec.targets.balanced_accuracy, cv_source
        )
        serving["prevalence_power"] = prevalence_power["alpha"]
    return calibration, prevalence_power, serving


OWN_VAL_MIN_PER_CLASS = 100  # val/ images per class a student's own predictions need to carry its prediction sets
VAL_FOLDS = 5


def conformal_figures(
    spec: ModalitySpec, cv_folds: list[dict], cv_source: str, oof_serving: dict, val_samples, served_val, y_val
) -> dict:
    """The card's `conformal`: prediction-set thresholds and what they give (cnn_model.training.conformal).

    Calibrated on the recipe's OOF predictions served as the card serves them (oof_serving), with val/ as the
    check. A distilled student has no OOF predictions of its own: its teachers' stand for it, unless val/ holds
    OWN_VAL_MIN_PER_CLASS of every class, in which case the student's own val predictions (served_val, the exact
    model that serves, never trained on them) are the calibration set, cross-fitted over grouped folds of val/,
    and the teachers' OOF predictions are the check.
    """
    serving = ", ".join(
        part
        for part in (
            f"calibrated with temperature {oof_serving['temperature']}" if "temperature" in oof_serving else None,
            f"each fold's prevalence correction raised to the power {oof_serving['prevalence_power']}"
            if "prevalence_power" in oof_serving
            else None,
        )
        if part
    )
    oof_source = f"{cv_source}: the pooled out-of-fold predictions of its {len(cv_folds)} folds, " + (
        f"served as this card's rules serve them ({serving})" if serving else "the networks' own probabilities"
    )
    n_oof = sum(len(f["y_true"]) for f in cv_folds)
    teachers = (
        np.concatenate([f["served"] for f in cv_folds]),
        np.concatenate([f["y_true"] for f in cv_folds]),
    )
    counts = np.bincount(y_val, minlength=len(spec.class_names))
    if not spec.recipe.distilled_from:
        choice = (
            "This model is its recipe trained once more on train/; the fold models are the same recipe, each "
            f"predicting images it never trained on ({n_oof}), served by this card's rules. Val/ is the check "
            "(report.val; in sample for a model whose epoch was chosen on val)."
        )
        return conformal_section(spec, cv_folds, oof_source, choice, checks={"val": (served_val, y_val)})
    if counts.min() >= OWN_VAL_MIN_PER_CLASS:
        folds = [
            {"y_true": y_val[mask], "served": served_val[mask]}
            for mask in (np.array([_val_fold(s.group) == k for s in val_samples]) for k in range(VAL_FOLDS))
        ]
        choice = (
            "This model is a distilled student: its own val/ predictions (never trained on, and the exact model "
            f"that serves; at least {counts.min()} images of every class) are the calibration set, cross-fitted over "
            f"{VAL_FOLDS} folds of val/'s groups. Its teachers' OOF predictions ({cv_source}, {n_oof} images) are the "
            "other choice and the check (report.teachers_oof): their probabilities are on another scale (the student "
            "learnt calibrated, averaged soft targets), so thresholds fitted on them cover fewer of its val images."
        )
        source = (
            f"val/: this model's own predictions on its {len(y_val)} images, served by this card; {VAL_FOLDS} folds "
            "of val/'s groups (salted sha1) for the cross-fitted figures"
        )
        return conformal_section(spec, folds, source, choice, checks={"teachers_oof": teachers})
    choice = (
        f"This model is a distilled student with no out-of-fold predictions of its own, and val/ has as few as "
        f"{counts.min()} images of a class, too few to fit a class's quantile. Its teachers' ({cv_source}) stand for "
        f"it: each of {n_oof} images predicted by the fold model that never trained on it, served as its flag "
        "threshold is set (the scale of the soft targets it learnt). Its own val/ predictions check the "
        "thresholds (report.val_student)."
    )
    return conformal_section(spec, cv_folds, oof_source, choice, checks={"val_student": (served_val, y_val)})


def _val_fold(group: str) -> int:
    return int(hashlib.sha1(f"medsight-conformal:{group}".encode()).hexdigest(), 16) % VAL_FOLDS


def add_conformal(artifact_dir: Path, *, data_root: Path) -> ModelCard:
    """Write (or rewrite) only the card's `conformal` section, from the OOF predictions and the model's val/."""
    artifact_dir = Path(artifact_dir)
    card_path = artifact_dir / CARD_FILE
    runner = ModelRunner(artifact_dir)
    spec = runner.spec
    cv_folds, cv_source = cross_validation_folds(spec)
    if not cv_folds:
        raise ValueError(f"{spec.name}: the recipe names no cross-validation to calibrate prediction sets on")
    _, _, oof_serving = oof_decision_rules(spec, cv_folds, cv_source)
    if oof_serving:
        cv_folds, _ = cross_validation_folds(spec, **oof_serving)
    val_samples = list_class_folder(Path(data_root) / spec.name / "val", spec)
    served_val = np.concatenate([runner.run(preprocess_for_model(s.path, spec)[None])[0] for s in val_samples])
    y_val = np.array([spec.class_names.index(s.label) for s in val_samples])
    card = runner.card.to_json()
    card.pop("conformal", None)
    card["conformal"] = conformal_figures(spec, cv_folds, cv_source, oof_serving, val_samples, served_val, y_val)
    scored = ModelCard.from_json(card, str(card_path))
    write_card(card_path, scored)
    return scored


def cross_validation_folds(
    spec: ModalitySpec, *, temperature: float | None = None, prevalence_power: float = 1.0
) -> tuple[list[dict] | None, str | None]:
    """The OOF predictions of the folds that checked this recipe (recipe.cv_candidate), and where they are.

    Only a complete set of folds counts; a cv_oof threshold or calibration refuses anything less.
    """
    candidate = spec.recipe.cv_candidate
    if not candidate:
        if "cv_oof" in (spec.threshold_source, spec.calibration_source):
            raise ValueError(f"{spec.name}: the decision rule needs cv_oof but the recipe names no cv_candidate")
        return None, None
    folds = load_candidate(spec.name, candidate, temperature=temperature, prevalence_power=prevalence_power)
    if len(folds) != N_FOLDS:
        raise ValueError(f"{spec.name}/{candidate}: {len(folds)} of {N_FOLDS} cross-validation folds are finished")
    return folds, f"model_runs/{spec.name}/{candidate}"


def cross_validation_figures(
    spec: ModalitySpec, *, temperature: float | None = None, prevalence_power: float = 1.0
) -> dict:
    """The card's `cross_validation`: what the recipe scored out of fold, beside the shipped model's val figures.

    The fold models are not the shipped model (each trained on four fifths of train/ + val/); these are the
    recipe's figures, from many more held-out images than val has.
    """
    candidate = spec.recipe.cv_candidate
    summary = summarise(spec.name, candidate, temperature=temperature, prevalence_power=prevalence_power)
    pooled = summary["pooled"]

    def r(value):
        return round(float(value), 4)

    out = {
        "source": f"model_runs/{spec.name}/{candidate}",
        "what": (
            f"grouped {len(summary['folds_done'])}-fold cross-validation of this recipe over train/ + val/ "
            f"({summary['n_oof']} images; folds in model_runs/{spec.name}/folds.json), epoch rule "
            f"{summary['epoch_rule']} (the full epoch budget, last epoch's weights); each fold's figures are "
            "from a model that never trained on it"
        ),
        "n": summary["n_oof"],
        "mean_sd_over_folds": {key: [r(m), r(sd)] for key, (m, sd) in summary["mean_sd"].items()},
        "per_fold": {str(k): {key: r(v) for key, v in figures.items()} for k, figures in summary["per_fold"].items()},
        "pooled_oof": {
            **{key: r(pooled[key]) for key in ("accuracy", "balanced_accuracy", "macro_auc", "binary_auc")},
            "recall": {name: r(v) for name, v in pooled["recall"].items()},
            "flag_top1": {key: r(v) for key, v in pooled["top1_flag"].items()},
        },
    }
    if "accuracy_at_prevalence" in pooled:
        out["pooled_oof"]["accuracy_at_prevalence"] = r(pooled["accuracy_at_prevalence"])
    if spec.sensitivity_target is not None:
        folds, _ = cross_validation_folds(spec, temperature=temperature, prevalence_power=prevalence_power)
        evidence = oof_threshold_decision(spec, folds, out["source"])
        out["flag_at_oof_threshold"] = {
            "threshold": evidence["positive_threshold"],
            "sensitivity_target": spec.sensitivity_target,
            **evidence["threshold_evidence"]["oof"],
        }
        out["flag_cross_fitted"] = evidence["threshold_evidence"]["cross_fitted"]
    return out


def distillation_figures(runner: ModelRunner, cv_folds, cv_source, dataset_dir, val_samples, card) -> dict:
    """The card's `distillation`: the teachers on val/ beside the student on the same images (what distilling cost).

    Each val image is scored by the one fold model that never trained on it, served the way the student is
    (calibration, prevalence correction and flag rule), so both sides are out of sample.
    """
    spec = runner.spec
    served = {path: row for fold in cv_folds for path, row in zip(fold["paths"], fold["served"], strict=True)}
    keys = [s.path.relative_to(dataset_dir).as_posix() for s in val_samples]
    missing = [key for key in keys if key not in served]
    if missing:
        raise ValueError(f"{cv_source}: no out-of-fold prediction for {len(missing)} val images, e.g. {missing[0]}")
    probabilities = np.array([served[key] for key in keys])
    teachers = evaluate_runner(runner, val_samples, bootstrap_rounds=0, probabilities=probabilities)["metrics"]
    headline = (
        "n",
        "accuracy",
        "accuracy_at_prevalence",
        "balanced_accuracy",
        "macro_auc",
        "expected_calibration_error",
    )

    def figures(report):
        out = {key: report[key] for key in headline if key in report}
        out["recall"] = {name: report["per_class"][name]["recall"] for name in spec.class_names}
        out["flag"] = {key: report["binary"][key] for key in ("sensitivity", "specificity")}
        return out

    return {
        "teachers": f"the five fold models of {cv_source}, each on the val images it never trained on",
        "student": "this model, trained on all of train/ with the teachers' calibrated soft targets",
        "val_teachers": figures(teachers),
        "val_student": figures(card["metrics"]["val"]),
    }


def served_calibration(spec, oof_calibration, cv_source, network_val, y_val, val_samples) -> dict | None:
    """The temperature the served model carries, and what it was fitted on (spec.calibration_source)."""
    if spec.calibration_source == "cv_oof":
        return {**oof_calibration, "fitted_on": f"the pooled out-of-fold predictions of {cv_source}"}
    if spec.calibration_source == "val":
        fitted = val_temperature(network_val, y_val, [s.group for s in val_samples])
        return {**fitted, "fitted_on": "this model's own predictions on val/ (never trained on)"}
    return None


def calibration_section(
    calibration: dict | None, oof_calibration: dict | None, network_val: np.ndarray, val: dict
) -> dict:
    """The card's `calibration`: ECE of the shown label (10 bins) out of fold and on val, before and after.

    "network" is the network's own confidence; "served" what the service shows (after the decision rule).
    """
    y_val = val["y_true"]
    section = {
        "metric": f"expected calibration error of the shown label, {ECE_BINS} equal-width confidence bins",
        "val": {
            "network_ece": expected_calibration_error(network_val, y_val),
            "served_ece": expected_calibration_error(val["probabilities"], y_val),
            "reliability_served": reliability_bins(val["probabilities"], y_val),
        },
    }
    if oof_calibration is not None:
        section["oof"] = {
            key: oof_calibration[key]
            for key in (
                "temperature",
                "n",
                "ece_before",
                "ece_after",
                "ece_cross_fitted",
                "reliability_before",
                "reliability_after",
            )
        }
    if calibration is None:
        section["rule"] = "none: the network's own confidence is served"
    else:
        section["rule"] = f"temperature scaling, T = {calibration['temperature']}, fitted on {calibration['fitted_on']}"
        section["fit"] = {
            key: calibration[key] for key in ("n", "ece_before", "ece_after", "ece_cross_fitted", "fold_temperatures")
        }
    return section


def held_out_checks(spec: ModalitySpec, version: str) -> list[dict]:
    """The data owner's held-out scores the spec records, each marked as this version's or an earlier one's."""
    return [
        {**check, "which": "this version" if check["version"] == version else "previous version's check"}
        for check in spec.held_out_checks
    ]


def limitations(spec: ModalitySpec, metrics: dict) -> str:
    """Every figure below its target, then the data caveats.

    Where the card reports accuracy_at_prevalence, that is what the accuracy target is held to:
    plain accuracy on a rebalanced split measures a population the service never sees.
    """
    shortfalls = []
    for split, figures in metrics.items():
        for name, target in asdict(spec.targets).items():
            measured_name = (
                "accuracy_at_prevalence" if name == "accuracy" and "accuracy_at_prevalence" in figures else name
            )
            value = figures.get(measured_name)
            if value is not None and value < target:
                shortfalls.append(
                    f"{measured_name.replace('_', ' ')} {value:.3f} on {split.replace('_', ' ')} (target {target:.2f})"
                )
    splits = " and ".join("the test slice" if split == "test_slice" else split.replace("_", " ") for split in metrics)
    verdict = (
        "Below the project's quality targets: " + "; ".join(shortfalls) + "."
        if shortfalls
        else f"At or above the project's quality targets on {splits}."
    )
    if spec.sensitivity_target is not None and spec.threshold_source == "cv_oof":
        verdict += (
            " The flag's threshold was set on cross-validation out-of-fold predictions over train/ + val/, so val's "
            "labels took part in choosing it (each val image predicted by a fold model that never trained on it); "
            "val checks the model itself independently, the threshold less so."
        )
    return f"{verdict} {spec.data_caveats}"


def median_latency_ms(runner: ModelRunner, samples) -> float:
    """Median ms per image, decoding excluded, preprocessing and inference included, one thread."""
    images = [load_image(s.path) for s in samples]
    timings = []
    for image in images * 3:
        start = time.perf_counter()
        runner.run(preprocess_for_model(image, runner.spec)[None])
        timings.append((time.perf_counter() - start) * 1000)
    return round(float(np.median(timings)), 2)


def write_card(path: Path, card: ModelCard) -> None:
    card.save(path)
