"""Reading finished folds back: mean ± sd over folds, pooled out-of-fold figures, the OOF threshold."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ...decision import DecisionPolicy, positive_indices
from ...metrics import accuracy_at_prevalence, balanced_accuracy, macro_ovr_auc, roc_auc
from ...modalities import get_spec
from ..calibration import oof_temperature
from ..rules import sensitivity_threshold
from .folds import CV_DIR, N_FOLDS, fold_stem, teacher_path


def load_candidate(
    modality: str,
    candidate: str,
    cv_dir: Path = CV_DIR,
    *,
    temperature: float | None = None,
    prevalence_power: float = 1.0,
) -> list[dict]:
    """Finished folds of a candidate: [{'fold', 'json', 'paths', 'groups', 'y_true', 'probabilities', 'served'}].

    served: what the service would decide on: the fold's prevalence correction where the spec has one,
    after calibration with `temperature` where given, with the weights raised to `prevalence_power`.
    """
    spec = get_spec(modality)
    folds = []
    for fold in range(N_FOLDS):
        stem = fold_stem(modality, candidate, fold, cv_dir)
        if not (stem.with_suffix(".npz").is_file() and stem.with_suffix(".json").is_file()):
            continue
        meta = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz")) as data:
            if list(data["class_names"]) != list(spec.class_names):
                raise ValueError(f"{stem}.npz: classes differ from the spec")
            probabilities = data["probabilities"].astype(np.float64)
            weights = meta.get("prevalence_weights")
            weights = np.array([weights[n] for n in spec.class_names]) if weights else None
            policy = DecisionPolicy(None if weights is None else weights**prevalence_power, temperature=temperature)
            folds.append(
                {
                    "fold": fold,
                    "json": meta,
                    "paths": data["paths"].tolist(),
                    "groups": data["groups"].tolist() if "groups" in data.files else None,
                    "y_true": data["y_true"].astype(np.int64),
                    "probabilities": probabilities,
                    "served": policy.adjust(probabilities),
                    "prevalence_weights": weights,
                }
            )
    return folds


def _flag_figures(y_true, scores, threshold, positive_idx) -> dict:
    truth = np.isin(y_true, positive_idx)
    flagged = scores >= threshold
    return {
        "sensitivity": float(np.mean(flagged[truth])) if truth.any() else float("nan"),
        "specificity": float(np.mean(~flagged[~truth])) if (~truth).any() else float("nan"),
    }


def summarise(
    modality: str,
    candidate: str,
    cv_dir: Path = CV_DIR,
    *,
    temperature: float | None = None,
    prevalence_power: float = 1.0,
) -> dict | None:
    """Mean ± sd over finished folds, pooled OOF figures and the OOF threshold for the sensitivity floor.

    temperature, prevalence_power: serve the OOF probabilities as a card's decision rule would (load_candidate).
    """
    spec = get_spec(modality)
    folds = load_candidate(modality, candidate, cv_dir, temperature=temperature, prevalence_power=prevalence_power)
    if not folds:
        return None
    n_classes = len(spec.class_names)
    mix = np.array([spec.prevalence[n] for n in spec.class_names], dtype=np.float64) if spec.prevalence else None
    positive_idx = positive_indices(spec)

    def figures(y, p) -> dict:
        predicted = p.argmax(axis=1)
        out = {
            "accuracy": float(np.mean(predicted == y)),
            "balanced_accuracy": balanced_accuracy(y, predicted, n_classes),
            "macro_auc": macro_ovr_auc(y, p),
            "binary_auc": roc_auc(np.isin(y, positive_idx), p[:, positive_idx].sum(axis=1)),
        }
        if mix is not None:
            out["accuracy_at_prevalence"] = accuracy_at_prevalence(y, predicted, mix)
        return out

    per_fold = {f["fold"]: figures(f["y_true"], f["served"]) for f in folds}
    keys = list(next(iter(per_fold.values())))
    mean_sd = {}
    for key in keys:
        values = np.array([v[key] for v in per_fold.values()])
        mean_sd[key] = [float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")]

    y = np.concatenate([f["y_true"] for f in folds])
    p = np.concatenate([f["served"] for f in folds])
    pooled = figures(y, p)
    predicted = p.argmax(axis=1)
    pooled["recall"] = {
        name: float(np.mean(predicted[y == k] == k)) for k, name in enumerate(spec.class_names) if np.any(y == k)
    }
    scores = p[:, positive_idx].sum(axis=1)
    top1 = np.isin(predicted, positive_idx)
    truth = np.isin(y, positive_idx)
    pooled["top1_flag"] = {"sensitivity": float(np.mean(top1[truth])), "specificity": float(np.mean(~top1[~truth]))}
    floor = spec.cross_validation.sensitivity_floor
    threshold = math.floor(sensitivity_threshold(p, y, spec, floor) * 1e4) / 1e4
    pooled["threshold"] = {"floor": floor, "threshold": threshold, **_flag_figures(y, scores, threshold, positive_idx)}
    if len(folds) > 1:  # the threshold rule scored honestly: each fold flagged at the others' OOF threshold
        flags = []
        for f in folds:
            others = [g for g in folds if g is not f]
            t = sensitivity_threshold(
                np.concatenate([g["served"] for g in others]),
                np.concatenate([g["y_true"] for g in others]),
                spec,
                floor,
            )
            flags.append(f["served"][:, positive_idx].sum(axis=1) >= math.floor(t * 1e4) / 1e4)
        flags = np.concatenate(flags)
        pooled["threshold_cross_fitted"] = {
            "sensitivity": float(np.mean(flags[truth])),
            "specificity": float(np.mean(~flags[~truth])),
        }
    curves = _epoch_curves(folds)
    seconds = {f["fold"]: f["json"]["training_seconds"] for f in folds}
    calibration = None
    if len(folds) > 1:
        fitted = oof_temperature(folds)
        calibration = {key: fitted[key] for key in ("temperature", "ece_before", "ece_after", "ece_cross_fitted")}
    return {
        "modality": modality,
        "candidate": candidate,
        "folds_done": sorted(per_fold),
        "n_oof": int(len(y)),
        "per_fold": per_fold,
        "mean_sd": mean_sd,
        "pooled": pooled,
        "epoch_curve": curves,
        "calibration": calibration,
        "flip_tta": _flip_tta_figures(modality, candidate, folds, cv_dir, figures),
        "training_seconds": seconds,
        "epoch_rule": folds[0]["json"]["epoch_rule"],
    }


def _flip_tta_figures(modality, candidate, folds, cv_dir, figures) -> dict | None:
    """Pooled OOF figures with the flip views averaged (from the folds' teacher files), where every fold has one."""
    paths = [teacher_path(modality, candidate, f["fold"], cv_dir) for f in folds]
    if not all(p.is_file() for p in paths):
        return None
    ys, averaged = [], []
    for f, path in zip(folds, paths, strict=True):
        with np.load(path) as teacher:
            held = teacher["folds"] == f["fold"]
            views = teacher["probabilities"][held].astype(np.float64)  # (images, views, classes)
            ys.append(teacher["y_true"][held].astype(np.int64))
        weights = f["json"].get("prevalence_weights")
        policy = DecisionPolicy(np.array([weights[n] for n in get_spec(modality).class_names]) if weights else None)
        averaged.append(policy.adjust(views.mean(axis=1)))
    return {"views": int(views.shape[1]), **figures(np.concatenate(ys), np.concatenate(averaged))}


def _epoch_curves(folds) -> dict | None:
    """Held-out figures per epoch averaged over folds (fixed epoch rule only: logged, never chosen on)."""
    if any(f["json"]["epoch_rule"] != "fixed" or not f["json"]["epochs"] for f in folds):
        return None
    rows = defaultdict(list)
    for f in folds:
        for row in f["json"]["epochs"]:
            rows[(row["stage"], row["epoch"])].append(row)
    curve = []
    for (stage, epoch), group in rows.items():
        if len(group) != len(folds):
            continue
        curve.append(
            {
                "stage": stage,
                "epoch": epoch,
                "balanced_accuracy": float(np.mean([r["balanced_accuracy"] for r in group])),
                "accuracy": float(np.mean([r["accuracy"] for r in group])),
                "macro_auc": float(np.mean([r["macro_auc"] for r in group])),
            }
        )
    if not curve:
        return None
    best = max(curve, key=lambda r: r["balanced_accuracy"] + 0.1 * r["macro_auc"])
    return {"best": best, "last": curve[-1], "n_epochs": len(curve)}


def format_summary(s: dict) -> str:
    ms = s["mean_sd"]
    pooled = s["pooled"]

    def pm(key):
        mean, sd = ms[key]
        return f"{mean:.3f} ± {sd:.3f}" if not np.isnan(sd) else f"{mean:.3f}"

    lines = [
        f"{s['modality']}/{s['candidate']}: folds {s['folds_done']} ({s['n_oof']} OOF images, epoch rule "
        f"{s['epoch_rule']})",
        f"  mean ± sd over folds: accuracy {pm('accuracy')}, balanced {pm('balanced_accuracy')}, "
        f"macro AUC {pm('macro_auc')}, binary AUC {pm('binary_auc')}"
        + (f", accuracy at deployment mix {pm('accuracy_at_prevalence')}" if "accuracy_at_prevalence" in ms else ""),
        f"  pooled OOF: accuracy {pooled['accuracy']:.3f}, balanced {pooled['balanced_accuracy']:.3f}, "
        f"macro AUC {pooled['macro_auc']:.3f}, binary AUC {pooled['binary_auc']:.3f}"
        + (
            f", accuracy at deployment mix {pooled['accuracy_at_prevalence']:.3f}"
            if "accuracy_at_prevalence" in pooled
            else ""
        ),
        "  recall: " + ", ".join(f"{k} {v:.2f}" for k, v in pooled["recall"].items()),
        f"  flag, top-1 rule: sens {pooled['top1_flag']['sensitivity']:.3f} spec "
        f"{pooled['top1_flag']['specificity']:.3f}",
        f"  flag at OOF threshold {pooled['threshold']['threshold']} (sens floor {pooled['threshold']['floor']}): "
        f"sens {pooled['threshold']['sensitivity']:.3f} spec {pooled['threshold']['specificity']:.3f}",
    ]
    if "threshold_cross_fitted" in pooled:
        cf = pooled["threshold_cross_fitted"]
        lines.append(
            f"  same rule, each fold at the other folds' threshold: sens {cf['sensitivity']:.3f} "
            f"spec {cf['specificity']:.3f}"
        )
    if s["epoch_curve"]:
        best, last = s["epoch_curve"]["best"], s["epoch_curve"]["last"]
        lines.append(
            f"  held-out per epoch (mean over folds): last {last['stage']}:{last['epoch']} bal "
            f"{last['balanced_accuracy']:.3f} acc {last['accuracy']:.3f}; best {best['stage']}:{best['epoch']} bal "
            f"{best['balanced_accuracy']:.3f} acc {best['accuracy']:.3f} (for choosing a budget; optimistic as a score)"
        )
    if s["flip_tta"]:
        tta = s["flip_tta"]
        lines.append(
            f"  pooled OOF with {tta['views']}-view flip TTA: accuracy {tta['accuracy']:.3f}, balanced "
            f"{tta['balanced_accuracy']:.3f}, macro AUC {tta['macro_auc']:.3f}"
        )
    if s["calibration"]:
        c = s["calibration"]
        lines.append(
            f"  calibration: OOF ECE {c['ece_before']:.3f}; temperature {c['temperature']} -> {c['ece_after']:.3f}, "
            f"cross-fitted {c['ece_cross_fitted']:.3f}"
        )
    lines.append("  training seconds per fold: " + ", ".join(f"{k}: {v:.0f}" for k, v in s["training_seconds"].items()))
    return "\n".join(lines)


def format_table(summaries: list[dict]) -> str:
    """One markdown row per candidate: mean ± sd over folds, and the OOF flag at the OOF threshold."""
    lines = [
        "| modality | candidate | folds | accuracy | balanced accuracy | macro AUC | OOF threshold (floor) | "
        "sens / spec at it | cross-fitted sens / spec | ECE → calibrated (cross-fitted) | minutes per fold |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:

        def pm(key, s=s):
            mean, sd = s["mean_sd"][key]
            return f"{mean:.3f} ± {sd:.3f}" if not np.isnan(sd) else f"{mean:.3f}"

        t = s["pooled"]["threshold"]
        cf = s["pooled"].get("threshold_cross_fitted")
        accuracy = pm("accuracy")
        if "accuracy_at_prevalence" in s["mean_sd"]:
            accuracy += f" ({pm('accuracy_at_prevalence')} at the deployment mix)"
        minutes = [v / 60 for v in s["training_seconds"].values()]
        lines.append(
            f"| {s['modality']} | {s['candidate']} | {len(s['folds_done'])}/{N_FOLDS} | {accuracy} | "
            f"{pm('balanced_accuracy')} | {pm('macro_auc')} | {t['threshold']} ({t['floor']}) | "
            f"{t['sensitivity']:.3f} / {t['specificity']:.3f} | "
            + (f"{cf['sensitivity']:.3f} / {cf['specificity']:.3f}" if cf else "–")
            + " | "
            + (
                f"{s['calibration']['ece_before']:.3f} → {s['calibration']['ece_cross_fitted']:.3f}"
                if s["calibration"]
                else "–"
            )
            + f" | {min(minutes):.0f}–{max(minutes):.0f} |"
        )
    return "\n".join(lines)


def candidates_with_results(modality: str, cv_dir: Path = CV_DIR) -> list[str]:
    folder = Path(cv_dir) / modality
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("fold*.npz")))
