"""Uploads per second: MedSight under gunicorn against the original apps' serving pattern, in one run.

Usage: python bench/serving.py [--seconds 10] [--connections 4] [--workers 2] [--threads T]
       [--backends sqlite,postgresql,s3] [--skip-old] [--profile 200]
       [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Starts on loopback ports:
- the old pattern (../shared/bench/seed_pattern/app.py: Keras model.predict per request) under gunicorn;
- one after the other, MedSight under gunicorn with gunicorn.conf.py and the production settings, once per backend:
  sqlite (a temporary SQLite file, the local photo folder), postgresql (a fresh database, created and
  dropped here, the local photo folder) and s3 (that PostgreSQL database, photos in a moto S3 server).
Each MedSight run gets a patient account and a personal access token made through the managers.
For each server: the cold start (process start to the first answered upload), 20 warm-up uploads,
wrk with the seed pattern's multipart.lua (the 600x450 JPEG, -t2 -c<connections>), the CPU the
server's processes used during it (per upload, and as a share of what the machine's cores allow; the
database server's own CPU is not counted), and the workers' memory afterwards. The old pattern's
server stays up, idle, and is measured right before each MedSight run, so that each ratio compares
neighbouring measurements on a machine whose load varies.
Prints one table (figure | old pattern | MedSight | ratio), then the top of a profile of in-process
uploads (bench/upload_profile.py). Everything started is stopped again, also on Ctrl-C or an error.
Without ../shared (the seed pattern, its wrk script and photo) only the profile runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    LOOPBACK,
    REPO_ROOT,
    SAMPLE_IMAGE,
    SEED_PATTERN_DIR,
    UNLIMITED_UPLOAD_SETTINGS,
    WRK_SCRIPT,
    Upload,
    WorkerMemory,
    WrkResult,
    add_postgres_argument,
    app_log_in,
    first_answer,
    free_port,
    load_average,
    moto_s3,
    postgres_database,
    production_env,
    run_wrk,
    server_cpu_seconds,
    service,
    stop_on_sigterm,
    warm_up,
    worker_memory,
)
from bench.upload_profile import MODALITY, UPLOAD_PATH, issue_token, production_app, profile_uploads, release  # noqa: E402

BACKENDS = ("sqlite", "postgresql", "s3")
WARM_UP_UPLOADS = 20


CORES = len(os.sched_getaffinity(0)) or 1


@dataclass(frozen=True)
class ServerRun:
    cold_start_s: float
    wrk: WrkResult
    memory: WorkerMemory
    load: str
    cpu_ms: float  # CPU of the server's processes per answered upload

    @property
    def cores_share(self) -> float:
        """The share of the machine's cores the server kept busy: uploads/s x CPU per upload / cores."""
        return self.wrk.rps * self.cpu_ms / (CORES * 1000)

    @property
    def cores_limit(self) -> float:
        """Uploads/s all the cores would allow at this CPU cost per upload."""
        return CORES * 1000 / self.cpu_ms if self.cpu_ms else float("nan")


def timed_wrk(process, port: int, path: str, upload: Upload, args) -> tuple[WrkResult, float]:
    """wrk against the server, and the CPU milliseconds its processes spent per answered upload meanwhile."""
    cpu_before = server_cpu_seconds(process.pid)
    result = run_wrk(port, path, upload, SAMPLE_IMAGE, seconds=args.seconds, connections=args.connections)
    answered = result.rps * args.seconds
    cpu_ms = (server_cpu_seconds(process.pid) - cpu_before) * 1000 / answered if answered else float("nan")
    return result, cpu_ms


def measure(process, started: float, port: int, path: str, upload: Upload, args) -> ServerRun:
    cold = first_answer(process, port, path, upload, started)
    warm_up(port, path, upload, WARM_UP_UPLOADS)
    load = load_average()
    result, cpu_ms = timed_wrk(process, port, path, upload, args)
    return ServerRun(cold, result, worker_memory(process.pid), load, cpu_ms)


class OldPattern:
    """The old pattern's server, started once and kept (idle) beside the MedSight runs: its wrk run
    comes right before each of theirs, so every ratio compares two measurements minutes apart."""

    PATH = "/predict"

    def __init__(self, args, log_dir: Path, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(args.workers),
            "-b",
            f"{LOOPBACK}:{self.port}",
            "app:app",
        ]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.upload = Upload(image=SAMPLE_IMAGE.read_bytes())
        started = time.perf_counter()
        self.process = stack.enter_context(
            service("old-pattern", command, env=env, cwd=SEED_PATTERN_DIR, log_dir=log_dir)
        )
        self.cold_start_s = first_answer(self.process, self.port, self.PATH, self.upload, started)
        warm_up(self.port, self.PATH, self.upload, WARM_UP_UPLOADS)

    def measure(self) -> ServerRun:
        load = load_average()
        result, cpu_ms = timed_wrk(self.process, self.port, self.PATH, self.upload, self.args)
        return ServerRun(self.cold_start_s, result, worker_memory(self.process.pid), load, cpu_ms)


def run_medsight(args, log_dir: Path, database_url: str, storage: dict[str, str]) -> ServerRun:
    """MedSight under gunicorn (gunicorn.conf.py, production settings) on one database and storage."""
    with tempfile.TemporaryDirectory(prefix="medsight-bench-") as tmp:
        folder = Path(tmp)
        with app_log_in(log_dir / "medsight-setup.log"):
            setup = production_app(database_url, folder, storage)
            try:
                token = issue_token(setup)
            finally:
                release(setup)
        port = free_port()
        env = production_env(
            database_url,
            folder,
            port,
            args.workers,
            **UNLIMITED_UPLOAD_SETTINGS,
            **storage,
        )
        if args.threads:
            env["GUNICORN_THREADS"] = str(args.threads)
        command = [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py")]
        upload = Upload(image=SAMPLE_IMAGE.read_bytes(), extra=("modality", MODALITY), token=token)
        started = time.perf_counter()
        with service("medsight", command, env=env, cwd=REPO_ROOT, log_dir=log_dir) as process:
            return measure(process, started, port, UPLOAD_PATH, upload, args)


def _ratio(new: float, old: float | None) -> str:
    if old is None or not old or new != new:
        return "-"
    return f"{new / old:.2f}x"


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def print_table(old_runs: dict[str, ServerRun], runs: dict[str, ServerRun], args) -> None:
    figures = (
        ("uploads/s", lambda r: r.wrk.rps, 1),
        ("p50 ms", lambda r: r.wrk.p50_ms, 1),
        ("p95 ms", lambda r: r.wrk.p95_ms, 1),
        ("p99 ms", lambda r: r.wrk.p99_ms, 1),
        ("errors", lambda r: r.wrk.errors, 0),
        ("CPU ms per upload", lambda r: r.cpu_ms, 2),
        (f"share of {CORES} cores used", lambda r: r.cores_share, 2),
        (f"uploads/s {CORES} cores allow", lambda r: r.cores_limit, 0),
        ("worker RSS MB (largest)", lambda r: r.memory.rss_mb, 0),
        ("worker PSS MB (mean)", lambda r: r.memory.pss_mb, 0),
        ("cold start s", lambda r: r.cold_start_s, 2),
    )
    print(
        f"\ngunicorn {args.workers} workers, wrk -t2 -c{args.connections} -d{args.seconds}s, "
        f"{SAMPLE_IMAGE.name} ({SAMPLE_IMAGE.stat().st_size // 1024} KiB), MedSight: POST {UPLOAD_PATH} "
        f"modality={MODALITY} with a personal access token"
    )
    header = f"{'figure':<36}{'old pattern':>13}{'MedSight':>12}{'ratio':>9}"
    print(header)
    print("-" * len(header))
    for backend, run in runs.items():
        for name, value, digits in figures:
            new = value(run)
            old = old_runs.get(backend)
            before = value(old) if old else None
            label = f"{name} [{backend}]"
            print(f"{label:<36}{_cell(before, digits):>13}{_cell(new, digits):>12}{_ratio(new, before):>9}")
    for backend, run in runs.items():
        if backend in old_runs:
            print(f"old pattern [{backend}] measured at {old_runs[backend].load}")
        print(f"MedSight [{backend}] measured at {run.load}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="GUNICORN_THREADS (default: gunicorn.conf.py's)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument("--skip-old", action="store_true", help="do not run the old pattern")
    parser.add_argument("--profile", type=int, default=200, metavar="N", help="profile N in-process uploads (0: none)")
    add_postgres_argument(parser)
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    stop_on_sigterm()

    shared = WRK_SCRIPT.is_file() and SAMPLE_IMAGE.is_file()
    if not shared:
        print(f"{SEED_PATTERN_DIR} is absent: no wrk runs (they need its multipart.lua and photo); profile only.")
    elif shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install -y wrk): no wrk runs; profile only.")
        shared = False
    print(f"start: {load_average()}", flush=True)

    old_runs, runs = {}, {}
    with contextlib.ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medsight-bench-logs-")))
        postgres_url = None
        if {"postgresql", "s3"} & set(backends) or args.profile:
            try:
                postgres_url = stack.enter_context(postgres_database(args.postgres))
            except Exception as exc:  # psycopg2's OperationalError and friends: no server to use
                print(f"PostgreSQL at {args.postgres} is unavailable ({exc}); skipping postgresql and s3.")
                backends = [b for b in backends if b == "sqlite"]
        if shared:
            old = None
            if args.skip_old:
                print("old pattern: skipped (--skip-old)")
            elif importlib.util.find_spec("keras") is None:
                print("old pattern: skipped, it needs TensorFlow/Keras (requirements-train.txt)")
            else:
                print("old pattern (Keras model.predict per request): starting ...", flush=True)
                old = OldPattern(args, log_dir, stack)
            for backend in backends:
                if old is not None:
                    print(f"old pattern, before MedSight on {backend} ...", flush=True)
                    old_runs[backend] = old.measure()
                print(f"MedSight on {backend} ...", flush=True)
                if backend == "sqlite":
                    database = stack.enter_context(tempfile.TemporaryDirectory(prefix="medsight-bench-db-"))
                    runs[backend] = run_medsight(args, log_dir, f"sqlite:///{database}/bench.sqlite3", {})
                elif backend == "postgresql":
                    runs[backend] = run_medsight(args, log_dir, postgres_url, {})
                else:
                    with moto_s3(log_dir) as s3:
                        runs[backend] = run_medsight(args, log_dir, postgres_url, s3)
            print_table(old_runs, runs, args)
        if args.profile:
            from bench.upload_profile import sample_image

            database = postgres_url
            if database is None:
                database = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/profile.sqlite3"
            where = "PostgreSQL" if postgres_url else "SQLite"
            print(f"\nprofile of {args.profile} in-process uploads ({where}, local photo folder):", flush=True)
            print(profile_uploads(database, sample_image().read_bytes(), args.profile, lines=20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
