"""Command line: python -m cnn_model {train,export,predict,evaluate} ..."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .modalities import MODALITIES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_model", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, export and check one modality's model")
    train.add_argument("--modality", required=True, choices=MODALITIES)
    train.add_argument("--data-root", type=Path, default=None, help="folder holding MODALITY/train and val")
    train.add_argument("--backbone", type=Path, default=None, help="EfficientNet-Lite0 no-top .keras file")
    train.add_argument("--run-dir", type=Path, default=Path("training_runs"))
    train.add_argument("--artifacts-dir", type=Path, default=None)
    train.add_argument("--head-epochs", type=int)
    train.add_argument("--finetune-epochs", type=int)
    train.add_argument("--input-size", type=int)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument(
        "--input-mask",
        type=_mask_argument,
        metavar="TOP,BOTTOM,LEFT,RIGHT",
        help="hide these margins (fractions of the input side) in training and serving; an experiment's knob",
    )
    train.add_argument("--no-export", action="store_true")

    export = commands.add_parser("export", help="re-export a trained model from its run folder")
    export.add_argument("--modality", required=True, choices=MODALITIES)
    export.add_argument("--data-root", type=Path, default=None)
    export.add_argument("--run-dir", type=Path, default=Path("training_runs"))
    export.add_argument("--artifacts-dir", type=Path, default=None)

    rescore = commands.add_parser(
        "rescore", help="re-derive a shipped model's decision rule and recompute its card's metrics and plots"
    )
    rescore.add_argument("--modality", required=True, choices=MODALITIES)
    rescore.add_argument("--data-root", type=Path, default=None)
    rescore.add_argument("--artifacts-dir", type=Path, default=None)
    rescore.add_argument("--keep-latency", action="store_true", help="keep the card's latency figure")

    predict = commands.add_parser("predict", help="classify image files; one JSON object per line")
    predict.add_argument("--modality", required=True, choices=MODALITIES)
    predict.add_argument("--artifacts-dir", type=Path, default=None)
    predict.add_argument("files", nargs="+", type=Path)

    evaluate = commands.add_parser("evaluate", help="metrics of a shipped model on DIR/CLASS/images")
    evaluate.add_argument("--modality", required=True, choices=MODALITIES)
    evaluate.add_argument("--data", required=True, type=Path)
    evaluate.add_argument("--artifacts-dir", type=Path, default=None)
    evaluate.add_argument("--plots", type=Path, default=None, help="folder to write confusion/ROC PNGs into")
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the 95%% CIs")

    detect = commands.add_parser("detect", help="which modality each image is (null: none of ours); JSON lines")
    detect.add_argument("--artifacts-dir", type=Path, default=None)
    detect.add_argument("files", nargs="+", type=Path)

    train_gate = commands.add_parser("train-gate", help="build, fit and check the modality gate")
    train_gate.add_argument("--data-root", type=Path, default=None)
    train_gate.add_argument("--backbone", type=Path, default=None, help="EfficientNet-Lite0 no-top .keras file")
    train_gate.add_argument("--artifacts-dir", type=Path, default=None)
    train_gate.add_argument(
        "--foreign-folder", type=Path, action="append", default=[], help="extra foreign PNGs (e.g. screenshots)"
    )

    args = parser.parse_args(argv)
    from .runtime import ArtifactError

    try:
        return _run(args)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _mask_argument(text: str) -> tuple[float, float, float, float]:
    try:
        margins = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not four numbers: {text!r}") from None
    if len(margins) != 4 or not all(0 <= m < 0.5 for m in margins):
        raise argparse.ArgumentTypeError(f"want four fractions in [0, 0.5): {text!r}")
    return margins


def _run(args) -> int:
    if args.command == "predict":
        return _predict(args)
    if args.command == "detect":
        return _detect(args)
    if args.command == "train-gate":
        from .gate_training import train_gate
        from .pipeline import DEFAULT_BACKBONE, DEFAULT_DATA_ROOT
        from .runtime import ARTIFACTS_DIR

        card = train_gate(
            data_root=args.data_root or DEFAULT_DATA_ROOT,
            backbone=args.backbone or DEFAULT_BACKBONE,
            artifacts_dir=args.artifacts_dir or ARTIFACTS_DIR,
            foreign_folders=tuple(args.foreign_folder),
        )
        print(json.dumps({k: card[k] for k in ("version", "metrics", "serving")}, indent=2))
        return 0
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "export":
        from .export import export_modality
        from .pipeline import DEFAULT_DATA_ROOT
        from .runtime import ARTIFACTS_DIR

        result = export_modality(
            args.modality,
            run_dir=args.run_dir,
            data_root=args.data_root or DEFAULT_DATA_ROOT,
            artifacts_dir=args.artifacts_dir or ARTIFACTS_DIR,
        )
        print(json.dumps(result, indent=2))
        return 0
    if args.command == "rescore":
        from .card import score_artifact
        from .pipeline import DEFAULT_DATA_ROOT
        from .runtime import ARTIFACTS_DIR

        card = score_artifact(
            (args.artifacts_dir or ARTIFACTS_DIR) / args.modality,
            data_root=args.data_root or DEFAULT_DATA_ROOT,
            measure_latency=not args.keep_latency,
        )
        print(
            json.dumps(
                {"modality": args.modality, "decision": card.get("decision"), "metrics": card["metrics"]}, indent=2
            )
        )
        return 0
    if args.command == "train":
        from .pipeline import DEFAULT_BACKBONE, DEFAULT_DATA_ROOT, train_modality
        from .runtime import ARTIFACTS_DIR

        result = train_modality(
            args.modality,
            data_root=args.data_root or DEFAULT_DATA_ROOT,
            backbone=args.backbone or DEFAULT_BACKBONE,
            run_dir=args.run_dir,
            artifacts_dir=args.artifacts_dir or ARTIFACTS_DIR,
            head_epochs=args.head_epochs,
            finetune_epochs=args.finetune_epochs,
            input_size=args.input_size,
            input_mask=args.input_mask,
            seed=args.seed,
            export=not args.no_export,
        )
        print(json.dumps({k: v for k, v in result.items() if k in ("modality", "metrics", "artifact")}, indent=2))
    return 0


def _runner(args):
    from .runtime import ARTIFACTS_DIR, ModelRunner

    return ModelRunner((args.artifacts_dir or ARTIFACTS_DIR) / args.modality)


def _json_lines(files, describe) -> int:
    """Print describe(path) as one JSON line per file; an unreadable file gets an error line, and exit code 1."""
    from .preprocessing import ImageLoadError

    failures = 0
    for path in files:
        try:
            line = describe(path)
        except ImageLoadError as exc:
            failures += 1
            print(json.dumps({"path": str(path), "error": str(exc)}))
            print(f"error: {path}: {exc}", file=sys.stderr)
            continue
        print(json.dumps({"path": str(path), **line}))
    return 1 if failures else 0


def _predict(args) -> int:
    runner = _runner(args)

    def describe(path) -> dict:
        prediction = runner.predict(path)
        return {
            "label": prediction.label,
            "confidence": round(prediction.confidence, 6),
            prediction.positive_flag: prediction.is_positive,
            "positive_probability": round(prediction.positive_probability, 6),
            "probabilities": {k: round(v, 6) for k, v in prediction.probabilities.items()},
        }

    return _json_lines(args.files, describe)


def _detect(args) -> int:
    """{"path", "modality" (null: none of ours), "scores"} per file."""
    from .gate import GATE_DIR_NAME, ModalityGate
    from .runtime import ARTIFACTS_DIR

    gate = ModalityGate((args.artifacts_dir or ARTIFACTS_DIR) / GATE_DIR_NAME)

    def describe(path) -> dict:
        result = gate.detect(path)
        return {"modality": result.modality, "scores": result.scores}

    return _json_lines(args.files, describe)


def _evaluate(args) -> int:
    from .data import list_class_folder
    from .evaluation import evaluate_runner, write_plots

    runner = _runner(args)
    try:
        samples = list_class_folder(args.data, runner.spec)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = evaluate_runner(runner, samples, bootstrap_rounds=args.bootstrap)
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        write_plots(args.plots, runner.spec, {args.data.name or "data": result})
    print(
        json.dumps(
            {
                "modality": args.modality,
                "model": runner.name,
                "version": runner.version,
                "data": str(args.data),
                **result["metrics"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
