"""Command line: python -m cnn_model.training {train,export,rescore,conformal,train-gate} ...

Needs requirements-train.txt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..card import ARTIFACTS_DIR, ArtifactError
from ..modalities import MODALITIES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_model.training", description=__doc__)
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

    conformal = commands.add_parser(
        "conformal", help="refit only a shipped card's prediction sets (its `conformal` section) on the OOF predictions"
    )
    conformal.add_argument("--modality", required=True, choices=MODALITIES)
    conformal.add_argument("--data-root", type=Path, default=None)
    conformal.add_argument("--artifacts-dir", type=Path, default=None)

    train_gate = commands.add_parser("train-gate", help="build, fit and check the modality gate")
    train_gate.add_argument("--data-root", type=Path, default=None)
    train_gate.add_argument("--backbone", type=Path, default=None, help="EfficientNet-Lite0 no-top .keras file")
    train_gate.add_argument("--artifacts-dir", type=Path, default=None)
    train_gate.add_argument(
        "--foreign-folder", type=Path, action="append", default=[], help="extra foreign PNGs (e.g. screenshots)"
    )
    train_gate.add_argument(
        "--keep-network",
        action="store_true",
        help="refit the statistics on the feature network already exported in the artifacts folder (model.tflite kept)",
    )

    args = parser.parse_args(argv)
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
    if args.command == "train-gate":
        from .gate import train_gate
        from .pipeline import DEFAULT_BACKBONE, DEFAULT_DATA_ROOT

        card = train_gate(
            data_root=args.data_root or DEFAULT_DATA_ROOT,
            backbone=args.backbone or DEFAULT_BACKBONE,
            artifacts_dir=args.artifacts_dir or ARTIFACTS_DIR,
            foreign_folders=tuple(args.foreign_folder),
            keep_network=args.keep_network,
        )
        print(json.dumps({k: card[k] for k in ("version", "metrics", "serving")}, indent=2))
        return 0
    if args.command == "export":
        from ..modalities import get_spec
        from .export import export_modality
        from .pipeline import DEFAULT_DATA_ROOT

        if get_spec(args.modality).recipe.quantisation_aware:
            raise ArtifactError(
                f"{args.modality} serves an int8 twin of its float model: python -m cnn_model.training.qat fit "
                f"--modality {args.modality} --teacher DIR makes it (export would replace it with a plain export)"
            )

        result = export_modality(
            args.modality,
            run_dir=args.run_dir,
            data_root=args.data_root or DEFAULT_DATA_ROOT,
            artifacts_dir=args.artifacts_dir or ARTIFACTS_DIR,
        )
        print(json.dumps(result, indent=2))
        return 0
    if args.command == "rescore":
        from .pipeline import DEFAULT_DATA_ROOT
        from .scoring import score_artifact

        card = score_artifact(
            (args.artifacts_dir or ARTIFACTS_DIR) / args.modality,
            data_root=args.data_root or DEFAULT_DATA_ROOT,
            measure_latency=not args.keep_latency,
        )
        print(
            json.dumps(
                {
                    "modality": args.modality,
                    "decision": card.decision.to_json() if card.decision else None,
                    "metrics": card.metrics,
                },
                indent=2,
            )
        )
        return 0
    if args.command == "conformal":
        from .pipeline import DEFAULT_DATA_ROOT
        from .scoring import add_conformal

        card = add_conformal(
            (args.artifacts_dir or ARTIFACTS_DIR) / args.modality, data_root=args.data_root or DEFAULT_DATA_ROOT
        )
        print(json.dumps({"modality": args.modality, "conformal": card.conformal.to_json()}, indent=2))
        return 0
    if args.command == "train":
        from .pipeline import DEFAULT_BACKBONE, DEFAULT_DATA_ROOT, train_modality

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


if __name__ == "__main__":
    sys.exit(main())
