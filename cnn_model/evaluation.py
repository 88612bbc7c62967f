"""Evaluate a served model (the exact LiteRT artifact) on labelled folders, and draw its plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import Sample
from .metrics import classification_report, confusion_matrix, roc_curve
from .preprocessing import preprocess_for_model
from .runtime import ModelRunner


def evaluate_runner(
    runner: ModelRunner, samples: list[Sample], *, bootstrap_rounds: int = 1000, probabilities: np.ndarray | None = None
) -> dict:
    """{'metrics': report, 'y_true': labels, 'probabilities': array} for the given samples.

    The probabilities and the malignant/abnormal flag are the served ones (the card's decision rule);
    pass `probabilities` when they are already computed for these samples.
    """
    spec = runner.spec
    class_names = list(spec.class_names)
    if probabilities is None:
        probabilities = np.concatenate([runner.run(preprocess_for_model(s.path, spec)[None])[0] for s in samples])
    y_true = np.array([class_names.index(s.label) for s in samples])
    report = classification_report(
        y_true,
        probabilities,
        class_names,
        spec.positive_classes,
        bootstrap_rounds=bootstrap_rounds,
        predicted_positive=runner.decision.positive(probabilities, spec),
        positive_rule=runner.decision.describe(),
        prevalence=spec.prevalence,
    )
    return {"metrics": report, "y_true": y_true, "probabilities": probabilities}


def write_plots(out_dir: Path, spec, evaluations: dict[str, dict]) -> dict[str, str]:
    """Confusion matrices and one-vs-rest ROC curves, one panel per evaluated split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    names = list(spec.class_names)
    n_panels = len(evaluations)

    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 4.6), squeeze=False)
    for ax, (split, result) in zip(axes[0], evaluations.items(), strict=True):
        matrix = confusion_matrix(result["y_true"], result["probabilities"].argmax(1), len(names))
        ax.imshow(matrix, cmap="Blues")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black",
                    fontsize=8,
                )
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        metrics = result["metrics"]
        ax.set_title(
            f"{spec.name} — {split} (n={metrics['n']})\nacc {metrics['accuracy']:.3f}, "
            f"balanced acc {metrics['balanced_accuracy']:.3f}",
            fontsize=9,
        )
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_matrix.png", dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 4.6), squeeze=False)
    for ax, (split, result) in zip(axes[0], evaluations.items(), strict=True):
        for k, name in enumerate(names):
            positives = result["y_true"] == k
            if positives.any() and (~positives).any():
                fpr, tpr = roc_curve(positives, result["probabilities"][:, k])
                auc = result["metrics"]["per_class"][name]["auc"]
                ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(
            f"{spec.name} — {split}: one-vs-rest ROC\nmacro AUC {result['metrics']['macro_auc']:.3f}", fontsize=9
        )
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "roc.png", dpi=90)
    plt.close(fig)
    return {"confusion_matrix": "confusion_matrix.png", "roc": "roc.png"}


def write_reliability_plot(out_dir: Path, spec, calibration: dict) -> str:
    """Reliability diagram: accuracy against stated confidence per bin, out of fold and on val."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitted_on_val = "fit" in calibration and "val/" in calibration["rule"]
    val_title = "val, served (in-sample: T fitted on val)" if fitted_on_val else "val, served"
    panels = {val_title: calibration["val"]["reliability_served"]}
    if "oof" in calibration:
        panels = {
            "CV fold models, out of fold": calibration["oof"]["reliability_before"],
            "CV fold models, calibrated": calibration["oof"]["reliability_after"],
            **panels,
        }
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, bins) in zip(axes[0], panels.items(), strict=True):
        filled = [b for b in bins if b["n"]]
        centres = [(b["low"] + b["high"]) / 2 for b in filled]
        ax.bar(centres, [b["accuracy"] for b in filled], width=0.09, color="#4c78a8", label="accuracy")
        # A bar below its marker: the model said more than it delivered in that bin.
        ax.plot(centres, [b["confidence"] for b in filled], "o", color="#f58518", label="mean confidence")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        for centre, b in zip(centres, filled, strict=True):
            ax.text(centre, 0.02, str(b["n"]), ha="center", fontsize=6, color="white")
        ece = sum(b["n"] * abs(b["confidence"] - b["accuracy"]) for b in filled) / sum(b["n"] for b in filled)
        ax.set_title(f"{spec.name} — {title}\nECE {ece:.3f}", fontsize=9)
        ax.set_xlabel("confidence of the shown label")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(Path(out_dir) / "reliability.png", dpi=80)
    plt.close(fig)
    return "reliability.png"
