"""Soak: mixed traffic against MedSight under gunicorn for a while; errors, latency and whether workers grow.

    .venv/bin/python bench/soak.py --seconds 600        # make soak

Starts gunicorn (gunicorn.conf.py, production settings) on 127.0.0.1 with a fresh SQLite database and
photo folder in a temporary directory, makes one patient with a personal access token, and sends, from a
few client threads, a mix of what real clients do and what broken or hostile ones do: uploads of real
images (some with an Idempotency-Key sent twice), history pages, one record, its heatmap, deletes, a file
that is no image, a truncated JPEG, a bad token and an unknown record. Every answer is checked against
the status it should have; a 5xx, a dropped connection or any other unexpected status is an error. Prints
requests, errors, p50/p95 per kind, and the workers' resident memory after the warm-up and at the end.
Everything it starts is stopped again (also on Ctrl-C), and the temporary directory is removed.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    LOOPBACK,
    UNLIMITED_UPLOAD_SETTINGS,
    free_port,
    load_average,
    service,
    stop_on_sigterm,
    tail,
    worker_memory,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "images"
MAX_SECONDS = 3600
PASSWORD = "soak-test-pass-42"
# (kind, weight): what a mixed day of clients looks like, hostile ones included.
MIX = (
    ("upload", 20),
    ("upload_idempotent", 5),
    ("history", 25),
    ("detail", 15),
    ("heatmap", 8),
    ("delete", 4),
    ("bad_file", 6),
    ("truncated_jpeg", 4),
    ("bad_token", 8),
    ("unknown_record", 5),
)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, problem: str | None) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            if problem:
                self.errors.append(f"{kind}: {problem}")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else float("nan")


def _images() -> list[tuple[str, bytes]]:
    found = []
    for modality_dir in sorted(path for path in FIXTURES.iterdir() if path.is_dir()):
        for image in sorted(modality_dir.rglob("*")):
            if image.suffix.lower() in (".jpg", ".jpeg", ".png"):
                found.append((modality_dir.name, image.read_bytes()))
                break
    if not found:
        raise SystemExit(f"no fixture images under {FIXTURES}")
    return found


def _truncated_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((1600, 1600), 60).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()[:4096] + b"\xff\xd9"


def _multipart(fields: dict[str, str], image: bytes) -> tuple[bytes, str]:
    boundary = "soak" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Client:
    """One client thread's connection to the server, re-opened after anything that closes it."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None, token=None):
        headers = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                    self.connection = None
                return response.status, data
            except (ConnectionError, http.client.HTTPException):
                # A keep-alive connection the server closed while idle: once more on a fresh one.
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _expect(status: int, expected: tuple[int, ...], body: bytes) -> str | None:
    if status in expected:
        return None
    return f"status {status} (expected {'/'.join(map(str, expected))}): {body[:160]!r}"


def client_loop(port: int, token: str, deadline: float, tally: Tally, seed: int, shared: dict) -> None:
    rng = random.Random(seed)
    client = Client(port, token)
    images, truncated = shared["images"], shared["truncated"]
    kinds, weights = zip(*MIX, strict=True)
    api = "/api/v1/predictions"
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights)[0]
        ids = shared["ids"]
        started = time.perf_counter()
        try:
            if kind in ("upload", "upload_idempotent"):
                modality, image = rng.choice(images)
                body, content_type = _multipart({"modality": modality, "note": "soak"}, image)
                headers = {"Content-Type": content_type}
                if kind == "upload_idempotent":
                    headers["Idempotency-Key"] = str(uuid.uuid4())
                status, data = client.request("POST", api, body=body, headers=headers)
                problem = _expect(status, (201,), data)
                if kind == "upload_idempotent" and not problem:
                    again, repeat = client.request("POST", api, body=body, headers=headers)
                    same = again == 200 and json.loads(repeat)["id"] == json.loads(data)["id"]
                    problem = None if same else f"replay answered {again}: {repeat[:160]!r}"
                if not problem:
                    with tally.lock:
                        ids.append(json.loads(data)["id"])
            elif kind == "history":
                status, data = client.request("GET", f"{api}?per_page={rng.choice((5, 20, 100))}")
                problem = _expect(status, (200,), data)
            elif kind in ("detail", "heatmap", "delete") and ids:
                with tally.lock:
                    chosen = rng.choice(ids)
                    if kind == "delete":
                        ids.remove(chosen)
                if kind == "detail":
                    status, data = client.request("GET", f"{api}/{chosen}")
                    problem = _expect(status, (200,), data)
                elif kind == "heatmap":
                    status, data = client.request("GET", f"{api}/{chosen}/heatmap")
                    problem = _expect(status, (200, 404), data)  # 404: deleted by another thread meanwhile
                else:
                    status, data = client.request("DELETE", f"{api}/{chosen}")
                    problem = _expect(status, (204, 404), data)
            elif kind == "bad_file":
                body, content_type = _multipart({"modality": "skin_lesion"}, os.urandom(rng.randint(1, 20_000)))
                status, data = client.request("POST", api, body=body, headers={"Content-Type": content_type})
                problem = _expect(status, (415, 422), data)
            elif kind == "truncated_jpeg":
                body, content_type = _multipart({"modality": "skin_lesion"}, truncated)
                status, data = client.request("POST", api, body=body, headers={"Content-Type": content_type})
                problem = _expect(status, (422,), data)
            elif kind == "bad_token":
                forged = rng.choice(("msk_00000000_" + secrets.token_urlsafe(32), "eyJhbGciOi.forged.jwt", "x" * 40))
                status, data = client.request("GET", api, token=forged)
                problem = _expect(status, (401,), data)
            elif kind == "unknown_record":
                status, data = client.request("GET", f"{api}/{uuid.uuid4()}")
                problem = _expect(status, (404,), data)
            else:
                continue  # nothing to read yet
        except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
            problem = f"{type(error).__name__}: {error}"
        tally.record(kind, time.perf_counter() - started, problem)


def prepare(folder: Path, env: dict[str, str]) -> str:
    """Migrate the fresh database and make a patient with a personal access token; the token."""
    from app import create_app
    from config import ProductionConfig
    from db import db
    from managers.tokens import TokenManager
    from managers.users import UserManager

    app = create_app(ProductionConfig(env, folder), instance_path=folder)
    with app.app_context():
        import flask_migrate

        from app import MIGRATIONS_DIR

        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        user = UserManager.register("soak@example.org", PASSWORD)
        token = TokenManager.create(user, "soak").secret
        db.session.remove()
        db.engine.dispose()
    return token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600, help=f"how long to send traffic (at most {MAX_SECONDS})")
    parser.add_argument("--clients", type=int, default=3, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args()
    seconds = max(5, min(args.seconds, MAX_SECONDS))
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="medsight-soak-") as tmp:
        folder = Path(tmp)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "DATABASE_URL", "REDIS_URL"))}
        env.update(
            MEDSIGHT_ENV="production",
            DATABASE_URL=f"sqlite:///{folder / 'soak.sqlite3'}",
            JWT_SECRET_KEY=secrets.token_hex(32),
            MEDSIGHT_INSTANCE_PATH=str(folder),
            STORAGE_LOCAL_ROOT=str(folder / "photos"),
            BIND=f"{LOOPBACK}:{port}",
            WEB_CONCURRENCY=str(args.workers),
            PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
            **UNLIMITED_UPLOAD_SETTINGS,
        )
        (folder / "metrics").mkdir()
        token = prepare(folder, env)
        shared = {"images": _images(), "truncated": _truncated_jpeg(), "ids": []}
        command = [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py")]
        with service("medsight-soak", command, env=env, cwd=REPO_ROOT, log_dir=folder) as process:
            warm = Tally()
            client_loop(port, token, _ready(process, port) + 10, warm, seed=0, shared=shared)  # warm-up: 10 s
            start_memory = worker_memory(process.pid)
            tally = Tally()
            deadline = time.monotonic() + seconds
            threads = [
                threading.Thread(target=client_loop, args=(port, token, deadline, tally, seed, shared), daemon=True)
                for seed in range(1, args.clients + 1)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(seconds + 60)
            end_memory = worker_memory(process.pid)
            alive = process.poll() is None
            log_tail = tail(process.log_path, 5)
        report(tally, warm, start_memory, end_memory, seconds, args, alive, log_tail)
        return 1 if tally.errors or not alive else 0


def _ready(process, port: int, limit_seconds: float = 120) -> float:
    """Wait until gunicorn answers /health; the moment it did (monotonic)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_seconds:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n{tail(process.log_path)}")
        try:
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return time.monotonic()
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within {limit_seconds} s:\n{tail(process.log_path)}")


def report(tally, warm, start_memory, end_memory, seconds, args, alive, log_tail) -> None:
    total = sum(len(v) for v in tally.latencies.values())
    every = [s for values in tally.latencies.values() for s in values]
    print(f"soak: {seconds} s, {args.clients} client threads, gunicorn {args.workers} workers; {load_average()}")
    print(f"{'kind':<18}{'requests':>10}{'p50 ms':>10}{'p95 ms':>10}")
    for kind, _weight in MIX:
        values = tally.latencies.get(kind, [])
        print(f"{kind:<18}{len(values):>10}{_percentile(values, 0.5):>10.1f}{_percentile(values, 0.95):>10.1f}")
    print(f"{'all':<18}{total:>10}{_percentile(every, 0.5):>10.1f}{_percentile(every, 0.95):>10.1f}")
    print(f"requests/s: {total / seconds:.1f}; errors: {len(tally.errors)} (warm-up errors: {len(warm.errors)})")
    for line in (warm.errors + tally.errors)[:10]:
        print(f"  {line}")
    growth = end_memory.rss_mb - start_memory.rss_mb
    print(
        f"worker RSS (largest): {start_memory.rss_mb:.0f} MB after warm-up -> {end_memory.rss_mb:.0f} MB at the end "
        f"({growth:+.0f} MB); PSS (mean) {start_memory.pss_mb:.0f} -> {end_memory.pss_mb:.0f} MB; "
        f"workers {start_memory.workers} -> {end_memory.workers}"
    )
    if not alive:
        print(f"gunicorn died:\n{log_tail}")


if __name__ == "__main__":
    raise SystemExit(main())
