"""Command line: python -m cnn_model.training.crossval {folds,fold,summary} ..."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...modalities import MODALITIES
from .candidates import candidate_recipe
from .fold_run import set_threads, train_fold
from .folds import (
    CV_DIR,
    DEFAULT_BACKBONE,
    DEFAULT_DATA_ROOT,
    DEFAULT_RUNS_DIR,
    N_FOLDS,
    fold_stem,
    folds_path,
    write_folds,
)
from .summary import candidates_with_results, format_summary, format_table, summarise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_model.training.crossval",
        description="grouped 5-fold cross-validation with out-of-fold predictions kept",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    folds = commands.add_parser("folds", help="write cv/<modality>/folds.json (path -> fold)")
    folds.add_argument("--modality", required=True, choices=MODALITIES)
    folds.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    folds.add_argument("--force", action="store_true", help="overwrite an existing folds.json")
    folds.add_argument("--cv-dir", type=Path, default=CV_DIR)

    fold = commands.add_parser("fold", help="train one fold of one candidate recipe and keep its OOF predictions")
    fold.add_argument("--modality", required=True, choices=MODALITIES)
    fold.add_argument("--candidate", required=True)
    fold.add_argument("--fold", required=True, type=int, choices=range(N_FOLDS))
    fold.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    fold.add_argument("--backbone", type=Path, default=DEFAULT_BACKBONE)
    fold.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    fold.add_argument("--threads", type=int, default=1, help="TensorFlow intra- and inter-op threads")
    fold.add_argument("--force", action="store_true", help="retrain a fold whose results exist")
    fold.add_argument("--cv-dir", type=Path, default=CV_DIR, help="where folds.json is read and results written")

    summary = commands.add_parser("summary", help="mean ± sd over folds and pooled OOF figures")
    summary.add_argument("--modality", choices=MODALITIES, help="default: every modality with results")
    summary.add_argument("--candidate", help="default: every candidate with results")
    summary.add_argument("--json", action="store_true", help="print JSON instead of text")
    summary.add_argument("--table", action="store_true", help="print one markdown table row per candidate")
    summary.add_argument("--cv-dir", type=Path, default=CV_DIR)

    args = parser.parse_args(argv)
    if args.command == "folds":
        path = folds_path(args.modality, args.cv_dir)
        if path.is_file() and not args.force:
            print(f"{path} exists (the folds every candidate shares); --force to rebuild", file=sys.stderr)
            return 1
        payload = write_folds(args.modality, args.data_root, args.cv_dir)
        print(
            f"{path}: {payload['n_images']} images, {payload['n_groups']} groups "
            f"({payload['multi_image_groups']} with several images)"
        )
        for name, counts in payload["class_counts_per_fold"].items():
            print(f"  {name:22s} {counts}")
        return 0
    if args.command == "fold":
        stem = fold_stem(args.modality, args.candidate, args.fold, args.cv_dir)
        if stem.with_suffix(".json").is_file() and not args.force:
            print(f"{stem}.json exists; --force to retrain", file=sys.stderr)
            return 0
        candidate_recipe(args.modality, args.candidate)  # fail fast on an unknown name
        set_threads(args.threads)
        train_fold(
            args.modality,
            args.candidate,
            args.fold,
            data_root=args.data_root,
            backbone=args.backbone,
            runs_dir=args.runs_dir,
            cv_dir=args.cv_dir,
        )
        return 0
    modalities = [args.modality] if args.modality else list(MODALITIES)
    results = []
    for modality in modalities:
        for candidate in [args.candidate] if args.candidate else candidates_with_results(modality, args.cv_dir):
            s = summarise(modality, candidate, args.cv_dir)
            if s:
                results.append(s)
    if args.json:
        print(json.dumps(results, indent=1))
    elif args.table:
        print(format_table(results))
    else:
        print("\n\n".join(format_summary(s) for s in results) if results else "no finished folds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
