"""Command line: python -m cnn_model {predict,evaluate,detect} ... (training: python -m cnn_model.training)"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .modalities import MODALITIES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_model", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

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

    args = parser.parse_args(argv)
    from .runtime import ArtifactError

    try:
        return _run(args)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "predict":
        return _predict(args)
    if args.command == "detect":
        return _detect(args)
    return _evaluate(args)


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
            "prediction_set": list(prediction.prediction_set) if prediction.prediction_set is not None else None,
            "set_coverage": prediction.set_coverage,
            "certainty": prediction.certainty,
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
