#!/usr/bin/env bash
# Runs cross-validation folds one at a time from a queue file, commits each finished fold.
#
#   nohup model_runs/run_queue.sh > training_runs_cv/queue.out 2>&1 &     # from the repository root
#
# Queue: training_runs_cv/queue.txt, one "MODALITY CANDIDATE FOLD" per line, taken from the top
# (edit it while the queue runs; a missing file is filled with the default order below). A fold
# whose fold<K>.json exists is skipped, so re-running the script resumes where it stopped.
# The code runs from a copy of cnn_model/ taken at start (training_runs_cv/snapshot/), so edits
# in the working tree cannot change a candidate between its folds; `touch training_runs_cv/RELOAD`
# takes a fresh copy before the next fold. Stop after the current fold: `touch training_runs_cv/STOP`.
# (Replace this file with mv, not in place, while it runs: bash reads a running script lazily.)
# CV_COMMIT=0 leaves the results uncommitted.
set -u
ROOT=$(pwd)
[ -d cnn_model/training/crossval ] || { echo "run from the repository root" >&2; exit 2; }
RUNS=$ROOT/training_runs_cv
QUEUE=$RUNS/queue.txt
PY=$ROOT/.venv/bin/python
DATA=$(cd "$ROOT/../shared/datasets" && pwd)
BACKBONE=$(cd "$ROOT/../shared/weights/efficientnet_lite0" && pwd)/efficientnet_lite0_imagenet_notop.keras
THREADS=${CV_THREADS:-1}
mkdir -p "$RUNS/logs"

if [ ! -f "$QUEUE" ]; then
    for job in "skin_lesion baseline" "chest_xray baseline" "cervical_cytology balanced" "breast px224"; do
        for k in 0 1 2 3 4; do echo "$job $k"; done
    done > "$QUEUE"
fi

snapshot() {
    rm -rf "$RUNS/snapshot" && mkdir -p "$RUNS/snapshot/cnn_model/modalities" "$RUNS/snapshot/cnn_model/training/crossval"
    cp cnn_model/*.py "$RUNS/snapshot/cnn_model/"
    cp cnn_model/modalities/*.py "$RUNS/snapshot/cnn_model/modalities/"
    cp cnn_model/training/*.py "$RUNS/snapshot/cnn_model/training/"
    cp cnn_model/training/crossval/*.py "$RUNS/snapshot/cnn_model/training/crossval/"
    echo "$(date -u +%FT%TZ) code snapshot of $(git rev-parse --short HEAD) (+ working tree)"
}

commit() {  # commit only the given paths; retried while another commit holds the index lock
    local message=$1
    shift
    [ "${CV_COMMIT:-1}" = 1 ] || return 0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if git add -- "$@" && git commit -q -m "$message" -- "$@"; then return 0; fi
        sleep 7
    done
    echo "commit failed: $*" >&2
}

snapshot
while true; do
    [ -f "$RUNS/STOP" ] && { rm -f "$RUNS/STOP"; echo "stopped on request"; break; }
    [ -f "$RUNS/RELOAD" ] && { rm -f "$RUNS/RELOAD"; snapshot; }
    line=$(grep -m1 -v '^\s*\(#.*\)\?$' "$QUEUE" || true)
    [ -n "$line" ] || { echo "$(date -u +%FT%TZ) queue empty"; break; }
    # Take the job off the queue first, so a failing job cannot loop.
    grep -v -x -F -- "$line" "$QUEUE" > "$QUEUE.tmp"; mv "$QUEUE.tmp" "$QUEUE"
    read -r modality candidate fold <<< "$line"
    out=model_runs/$modality/$candidate
    [ -f "$out/fold$fold.json" ] && { echo "skip $line (done)"; continue; }
    log=$RUNS/logs/${modality}_${candidate}_fold$fold.log
    echo "$(date -u +%FT%TZ) start $line"
    (cd "$RUNS/snapshot" && nice -n 5 "$PY" -m cnn_model.training.crossval fold --modality "$modality" \
        --candidate "$candidate" --fold "$fold" --threads "$THREADS" --data-root "$DATA" --backbone "$BACKBONE" \
        --runs-dir "$RUNS" --cv-dir "$ROOT/model_runs") > "$log" 2>&1
    rc=$?
    echo "$(date -u +%FT%TZ) end $line rc=$rc"
    if [ $rc -ne 0 ] || [ ! -f "$out/fold$fold.json" ]; then
        tail -n 5 "$log"
        continue
    fi
    mkdir -p "$out/logs"
    # The run log without TensorFlow's start-up chatter.
    grep -v -E '^(WARNING|I0000|E0000|W0000)|oneDNN|cpu_feature_guard|rebuild TensorFlow|absl::' "$log" \
        | tail -n 400 > "$out/logs/fold$fold.txt"
    message=$("$PY" - "$out/fold$fold.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["metrics"]
print(
    f"CV {d['modality']}/{d['candidate']} fold {d['fold']}: held-out fold ({m['n']} images) accuracy "
    f"{m['accuracy']:.3f}, balanced {m['balanced_accuracy']:.3f}, macro AUC {m['macro_auc']:.3f}; "
    f"{d['epoch_rule']} epoch rule, kept {d['kept_epoch']}, {d['training_seconds'] / 60:.0f} min training. "
    "OOF probabilities, metrics and the trimmed run log"
)
EOF
)
    commit "$message" "$out/fold$fold.npz" "$out/fold$fold.teacher.npz" "$out/fold$fold.json" "$out/logs/fold$fold.txt"
done
