"""Where an upload's slow moments come from: every upload timed phase by phase, in processes running side by side.

Usage: python bench/upload_tail.py [--uploads 1000] [--processes 2] [--postgres URL | --sqlite] [--s3]

Each process is the app with the production settings (as a gunicorn worker is) on one scratch database (a
fresh PostgreSQL database, dropped at the end, or a temporary SQLite file) and one photo folder (or a moto
S3 server with --s3), posting the image as `POST /api/v1/predictions` with a personal access token through
Flask's test client, as fast as it can. The processes share the disk, the database and the cores as two
workers do, without the HTTP server and the client in between.

Every upload is split into phases: the token check, decoding, the gate and capture check, the model, the
photo's put into storage, the account row's lock, the commit, the garbage collector's pauses, and the rest
(Flask, parsing the form, building the answer). Prints, per phase, its median, p99 and largest time, and what
the slowest 1% of uploads spent in each: the phase that grows there is the stall.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Upload, add_postgres_argument, app_log_in, load_average, moto_s3, postgres_database  # noqa: E402
from bench.upload_profile import MODALITY, UPLOAD_PATH, issue_token, production_app, release, sample_image  # noqa: E402

WARM_UP_UPLOADS = 20
PHASES = ("token", "decode", "gate", "model", "store", "lock", "commit", "gc", "other")


class PhaseClock:
    """Time spent in each phase of the upload under way (the outermost call of a phase counts)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._open: set[str] = set()
        self._gc_started: float | None = None

    def start_upload(self) -> None:
        self.spent = dict.fromkeys(PHASES, 0.0)

    def wrap(self, phase: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if phase in self._open:
                return function(*args, **kwargs)
            self._open.add(phase)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent[phase] += time.perf_counter() - started
                self._open.discard(phase)

        return timed

    def on_gc(self, phase: str, _info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self.spent["gc"] += time.perf_counter() - self._gc_started
            self._gc_started = None


def _instrument(clock: PhaseClock) -> None:
    """Put the clock around each phase's function (in this benchmark's process only)."""
    from sqlalchemy.orm import Session

    from managers.models import ModelManager
    from managers.predictions import PredictionManager
    from managers.tokens import TokenManager
    from managers.upload_quota import UploadQuota
    from services.s3_storage import S3Storage
    from services.storage import LocalFolderStorage

    for owner, name, phase in (
        (TokenManager, "authenticate", "token"),
        (PredictionManager, "decode_upload", "decode"),
        (PredictionManager, "choose_for", "gate"),
        (ModelManager, "run", "model"),
        (UploadQuota, "admit", "lock"),
    ):
        setattr(owner, name, staticmethod(clock.wrap(phase, getattr(owner, name))))
    for storage in (LocalFolderStorage, S3Storage):
        storage.put_object = clock.wrap("store", storage.put_object)
    Session.commit = clock.wrap("commit", Session.commit)
    gc.callbacks.append(clock.on_gc)


def run_process(database_url: str, folder: str, token: str, image: bytes, uploads: int, storage: dict, out: str):
    """One worker-like process: uploads timed phase by phase, written to out as JSON lines."""
    clock = PhaseClock()
    with app_log_in(Path(out).with_suffix(".log")):
        _upload_timed(clock, production_app(database_url, Path(folder), storage), token, image, uploads, out)


def _upload_timed(clock: PhaseClock, app, token: str, image: bytes, uploads: int, out: str) -> None:
    upload = Upload(image=image, extra=("modality", MODALITY), token=token)
    body, headers = upload.body(), upload.headers()
    client = app.test_client()
    for _ in range(WARM_UP_UPLOADS):
        client.post(UPLOAD_PATH, data=body, headers=headers)
    gc.collect()
    gc.freeze()  # as gunicorn.conf.py does with the preloaded heap
    _instrument(clock)
    records = []
    for _ in range(uploads):
        clock.start_upload()
        started = time.perf_counter()
        response = client.post(UPLOAD_PATH, data=body, headers=headers)
        total = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"upload answered {response.status_code}: {response.get_data()[:300]!r}")
        spent = clock.spent
        spent["other"] = max(total - sum(spent.values()), 0.0)
        records.append({"total": total, **spent})
    release(app)
    Path(out).write_text("\n".join(json.dumps(r) for r in records))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def report(records: list[dict], processes: int) -> str:
    slowest = sorted(records, key=lambda r: r["total"])[-max(len(records) // 100, 1) :]
    lines = [
        f"{len(records)} uploads in {processes} processes side by side ({load_average()})",
        f"{'phase':<8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'slowest 1%: mean ms':>22}",
    ]
    for phase in ("total", *PHASES):
        values = [r[phase] * 1000 for r in records]
        in_slowest = sum(r[phase] for r in slowest) / len(slowest) * 1000
        lines.append(
            f"{phase:<8}{_percentile(values, 0.5):>9.2f}{_percentile(values, 0.99):>9.2f}{max(values):>9.2f}"
            f"{in_slowest:>22.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=1000, help="per process")
    parser.add_argument("--processes", type=int, default=2)
    add_postgres_argument(parser)
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead of PostgreSQL")
    parser.add_argument("--s3", action="store_true", help="photos in a moto S3 server instead of a local folder")
    args = parser.parse_args()
    image = sample_image().read_bytes()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medsight-tail-")))
        if args.sqlite:
            database_url = f"sqlite:///{tmp}/bench.sqlite3"
        else:
            database_url = stack.enter_context(postgres_database(args.postgres))
        storage = stack.enter_context(moto_s3(tmp)) if args.s3 else {}
        os.environ.update({name: value for name, value in storage.items() if name.startswith("AWS_")})  # for boto3
        setup = production_app(database_url, tmp, storage)  # migrates the schema once
        try:
            token = issue_token(setup)
        finally:
            release(setup)
        context = multiprocessing.get_context("fork")
        outputs = [str(tmp / f"process-{i}.jsonl") for i in range(args.processes)]
        workers = [
            context.Process(target=run_process, args=(database_url, str(tmp), token, image, args.uploads, storage, out))
            for out in outputs
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
            if worker.exitcode:
                raise RuntimeError(f"a benchmark process exited with {worker.exitcode}")
        records = [json.loads(line) for out in outputs for line in Path(out).read_text().splitlines()]
    print(report(records, args.processes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
