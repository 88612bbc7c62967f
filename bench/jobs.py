"""Batch jobs against single uploads on this machine: images/s, CPU ms per image and worker memory.

N images (default 2000) taken from ../shared/datasets/*/val, cycling (a copy of an image gets a few
trailing bytes, which decoders ignore, so that every entry is distinct and is scored), go through
  * the upload path: POST /api/v1/predictions one image per request, in this process (one core);
  * the batch path: one zip through POST /api/v1/jobs, scored by a Celery worker started here with
    1 and then 2 worker processes, on RabbitMQ, with a scratch PostgreSQL database and a photo folder.
Both use modality auto (the gate decides per image). Needs RabbitMQ and PostgreSQL on loopback.

    .venv/bin/python bench/jobs.py [--images 2000] [--uploads 200] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import REPO_ROOT, _children, add_postgres_argument, load_average, postgres_database, stop_on_sigterm  # noqa: E402

DATASETS = REPO_ROOT.parent / "shared" / "datasets"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 120
WARM: list[tuple[str, bytes]] = []


@dataclass(frozen=True)
class Run:
    name: str
    processes: int
    images: int
    seconds: float
    cpu_seconds: float
    rss_mb: float | None

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / self.images

    @property
    def rate_per_core(self) -> float:
        return self.rate / self.processes


def held_out_images(count: int) -> list[tuple[str, bytes]]:
    """count distinct (name, bytes) from the datasets' val folders, cycling through them."""
    paths = sorted(p for p in DATASETS.glob("*/val/**/*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise SystemExit(f"no images under {DATASETS}/*/val")
    picked = []
    for index, path in zip(range(count), itertools.cycle(paths), strict=False):
        lap = index // len(paths)
        data = path.read_bytes() + (f"copy{lap}".encode() if lap else b"")
        picked.append((f"{lap}/{path.parent.parent.name}/{path.name}", data))
    return picked


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def settings(database_url: str, scratch: Path, broker: str, queue: str) -> dict[str, str]:
    return {
        "MEDSIGHT_ENV": "testing",
        "DATABASE_URL": database_url,
        "STORAGE_LOCAL_ROOT": str(scratch / "photos"),
        "CELERY_BROKER_URL": broker,
        "CELERY_QUEUE": queue,
        "UPLOAD_RATE_LIMIT": "1000000 per minute",
        "JOB_MAX_ENTRIES": "1000000",
        "JOB_MAX_ARCHIVE_MB": "4096",
        "JOB_MAX_UNCOMPRESSED_MB": "8192",
    }


def make_app(environ: dict[str, str], scratch: Path):
    import flask_migrate

    from app import create_app
    from config import TestingConfig

    app = create_app(TestingConfig(environ, scratch / "instance"), instance_path=scratch / "instance")
    with app.app_context():
        flask_migrate.upgrade(directory=str(REPO_ROOT / "migrations"))
    return app


def bearer(client) -> dict[str, str]:
    credentials = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.org", "password": "correct-horse-42"}
    assert client.post("/api/v1/auth/register", json=credentials).status_code == 201
    token = client.post("/api/v1/auth/login", json=credentials).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def measure_uploads(client, headers: dict, images: list[tuple[str, bytes]]) -> Run:
    for name, data in images[:5]:  # warm: models loaded, first allocations made
        client.post("/api/v1/predictions", headers=headers, data={"file": (io.BytesIO(data), name.rsplit("/", 1)[-1])})
    started, cpu = time.perf_counter(), time.process_time()
    ok = 0
    for name, data in images:
        response = client.post(
            "/api/v1/predictions",
            headers=headers,
            data={"file": (io.BytesIO(data), name.rsplit("/", 1)[-1]), "modality": "auto"},
            content_type="multipart/form-data",
        )
        ok += response.status_code == 201
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    rss = _kib(Path("/proc/self/status"), "VmRSS") / 1024
    print(f"  uploads: {ok}/{len(images)} scored (others refused by the gate or the quality check)", flush=True)
    return Run("upload path (one image per request, in-process)", 1, len(images), seconds, cpu_seconds, rss)


def _kib(path: Path, field: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def start_worker(app, environ: dict[str, str], processes: int, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "make_celery", "worker", "--pool", "prefork"]
    command += ["--concurrency", str(processes), "--queues", environ["CELERY_QUEUE"], "--loglevel", "INFO"]
    command += ["--without-heartbeat", "--without-mingle", "--without-gossip", "--hostname", f"bench{processes}@%h"]
    env = {**os.environ, **environ, "MEDSIGHT_INSTANCE_PATH": str(log_path.parent / "worker-instance")}
    worker = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_ready(app, worker, processes, log_path)
    except BaseException:
        os.killpg(worker.pid, 9)
        worker.wait()
        raise
    return worker


def _wait_ready(app, worker: subprocess.Popen, processes: int, log_path: Path) -> None:
    """Ready once it answers a ping: it consumes from the queue by then."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not app.extensions["celery"].control.ping(destination=[f"bench{processes}@{os.uname().nodename}"], timeout=1):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log_path.read_text()[-3000:]}")


def _wait_for(app, job_id: uuid.UUID) -> None:
    from sqlalchemy import select

    from db import db
    from models import Job

    while True:
        with app.app_context():
            status = db.session.scalar(select(Job.status).where(Job.id == job_id))
            db.session.remove()
        if status not in ("queued", "running"):
            return
        time.sleep(0.2)


def warm_up(app, client, headers, archive_entries: int) -> None:
    """A small job in one-image chunks first, so that every worker process has loaded its models."""
    chunk_size = app.config["JOB_CHUNK_SIZE"]
    app.config["JOB_CHUNK_SIZE"] = 1
    try:
        entries = [(f"warm/{i}.jpg", data + f"warm{i}".encode()) for i, (_, data) in enumerate(WARM[:archive_entries])]
        response = client.post(
            "/api/v1/jobs", headers=headers, data={"file": (io.BytesIO(zip_of(entries)), "warm.zip")}
        )
        _wait_for(app, uuid.UUID(response.get_json()["id"]))
    finally:
        app.config["JOB_CHUNK_SIZE"] = chunk_size


def measure_batch(app, client, headers, archive: bytes, count: int, processes: int, environ, log_dir: Path) -> Run:
    worker = start_worker(app, environ, processes, log_dir / f"worker-{processes}.log")
    try:
        warm_up(app, client, headers, archive_entries=processes * 4)
        pids = [worker.pid, *_children(worker.pid)]
        cpu_before = _cpu_seconds(pids)
        started = time.perf_counter()
        response = client.post(
            "/api/v1/jobs",
            headers=headers,
            data={"file": (io.BytesIO(archive), "bench.zip")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 202, response.get_json()
        job_id = uuid.UUID(response.get_json()["id"])
        _wait_for(app, job_id)
        seconds = time.perf_counter() - started
        pids = [worker.pid, *_children(worker.pid)]
        cpu_seconds = _cpu_seconds(pids) - cpu_before
        rss = max(_kib(Path(f"/proc/{pid}/status"), "VmRSS") for pid in _children(worker.pid)) / 1024
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
        print(f"  {processes} worker process(es): {job['scored']} scored, {job['failed']} failed", flush=True)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)
    # Submitting (reading and storing the archive) is counted in the time, not in the workers' CPU.
    return Run(f"batch path, {processes} Celery worker process(es)", processes, count, seconds, cpu_seconds, rss)


def print_table(runs: list[Run], cores: int) -> None:
    upload = runs[0]
    print(f"\n{cores} cores; {load_average()}\n")
    print("| Path | Processes | Images | Images/s | Images/s per process | CPU ms per image | Largest worker RSS |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        ratio = f" ({run.rate_per_core / upload.rate_per_core:.1f}× the upload path)" if run is not upload else ""
        # Per core: a worker process also scores in a second thread, so images/s per process can exceed a core's.
        per_core = f" ({upload.cpu_ms / run.cpu_ms:.1f}× fewer)" if run is not upload else ""
        rss = f"{run.rss_mb:.0f} MB" if run.rss_mb is not None else "–"
        print(
            f"| {run.name} | {run.processes} | {run.images} | {run.rate:.1f} | {run.rate_per_core:.1f}{ratio} "
            f"| {run.cpu_ms:.1f}{per_core} | {rss} |"
        )
    best = max(runs[1:], key=lambda run: run.rate_per_core, default=None)
    if best is not None:
        wall = 100_000 / best.rate_per_core / 60
        cpu = 100_000 * best.cpu_ms / 1000 / 60
        print(
            f"\n100,000 images: {wall:.0f} min of one worker process at the best rate per process measured "
            f"({best.rate_per_core:.1f}/s), {cpu:.0f} min of CPU ({best.cpu_ms:.0f} ms each); "
            + ", ".join(f"about {wall / n:.0f} min on {n}" for n in (4, 16, 64))
            + " cores if workers scale with cores."
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images through the batch path")
    parser.add_argument("--uploads", type=int, default=200, help="images through the upload path")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure, comma-separated")
    parser.add_argument("--chunk", type=int, default=100, help="JOB_CHUNK_SIZE")
    add_postgres_argument(parser)
    parser.add_argument(
        "--broker", default=os.environ.get("MEDSIGHT_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    )
    args = parser.parse_args()
    stop_on_sigterm()
    print(f"start: {load_average()}", flush=True)
    images = held_out_images(max(args.images, args.uploads))
    WARM.extend(images[:16])
    archive = zip_of(images[: args.images])
    queue = f"medsight-bench-{uuid.uuid4().hex[:8]}"
    runs: list[Run] = []
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medsight-bench-jobs-")))
        database_url = stack.enter_context(postgres_database(args.postgres))
        environ = {**settings(database_url, scratch, args.broker, queue), "JOB_CHUNK_SIZE": str(args.chunk)}
        app = make_app(environ, scratch)
        client = app.test_client()
        headers = bearer(client)
        print(f"upload path: {args.uploads} images ...", flush=True)
        runs.append(measure_uploads(client, headers, images[: args.uploads]))
        for processes in (int(n) for n in args.workers.split(",") if n.strip()):
            print(f"batch path: {args.images} images, {processes} worker process(es) ...", flush=True)
            runs.append(measure_batch(app, client, headers, archive, args.images, processes, environ, scratch))
        with contextlib.suppress(Exception):
            import kombu

            with kombu.Connection(args.broker) as connection:
                connection.default_channel.queue_delete(queue)
        with app.app_context():
            from db import db

            db.session.remove()
            db.engine.dispose()
    print_table(runs, os.cpu_count() or 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
