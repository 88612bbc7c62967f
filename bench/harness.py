"""What the benchmarks start and stop: servers in their own process groups, a scratch PostgreSQL
database, a moto S3 server, wrk, and the memory of a server's workers. Loopback only.

Everything is a context manager, so whatever was started is stopped again on an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The original apps' serving pattern and its wrk script, beside the checkout (not part of it).
SEED_PATTERN_DIR = REPO_ROOT.parent / "shared" / "bench" / "seed_pattern"
WRK_SCRIPT = SEED_PATTERN_DIR / "multipart.lua"
SAMPLE_IMAGE = SEED_PATTERN_DIR / "sample_600x450.jpg"
LOOPBACK = "127.0.0.1"
# One account sends every upload of a benchmark as fast as it can. Its rate limit is lifted (it would measure
# itself), but its storage quota stays on, as in production, where each upload reads the account's tally for
# it: set so high (10 TB) that no benchmark fills it.
UNLIMITED_UPLOAD_SETTINGS = {"UPLOAD_RATE_LIMIT": "100000000 per minute", "STORAGE_QUOTA_MB": "10000000"}
# Settings a MedSight server started here gets from production_env only, never from the caller's environment.
APP_SETTINGS = ("DATABASE_URL", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION", "STORAGE_LOCAL_ROOT", "MODEL_DIR")
_WRK_LINE = re.compile(r"rps=([\d.]+) p50_ms=([\d.]+) p95_ms=([\d.]+) p99_ms=([\d.]+) errors=(\d+)")


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that a killed benchmark still runs its clean-up."""

    def _exit(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


@contextlib.contextmanager
def service(
    name: str, command: list[str], *, env: dict[str, str], cwd: Path, log_dir: Path
) -> Iterator[subprocess.Popen]:
    """Run a server in its own process group (its log in log_dir); on leaving, stop the whole group."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.log_path = log_path
    try:
        yield process
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def app_log_in(path: Path) -> Iterator[None]:
    """Send what an in-process app writes to stderr (its JSON log lines, a line per request) to a file, as a
    server's log would go; its last lines are shown if the block fails."""
    with open(path, "w") as log, contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException:
            log.flush()
            print(tail(path), file=sys.__stderr__)
            raise


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def production_env(database_url: str, folder: Path, port: int, workers: int, **settings: str) -> dict[str, str]:
    """The environment MedSight runs in under gunicorn here: production settings on database_url, the photos
    in folder, bound to port on loopback; settings add or override. The caller's own app settings are dropped."""
    env = {k: v for k, v in os.environ.items() if k not in APP_SETTINGS}
    env.update(
        MEDSIGHT_ENV="production",
        DATABASE_URL=database_url,
        JWT_SECRET_KEY=secrets.token_hex(32),
        MEDSIGHT_INSTANCE_PATH=str(folder),
        STORAGE_LOCAL_ROOT=str(folder / "photos"),
        BIND=f"{LOOPBACK}:{port}",
        WEB_CONCURRENCY=str(workers),
        **settings,
    )
    return env


# -- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One multipart upload as multipart.lua sends it: the image under `field`, maybe one more form field."""

    image: bytes
    field: str = "file"
    extra: tuple[str, str] | None = None
    token: str | None = None
    boundary: str = "----benchboundary7MA4YWxkTrZu0gW"

    def body(self) -> bytes:
        b = self.boundary.encode()
        parts = [
            b"--"
            + b
            + b'\r\nContent-Disposition: form-data; name="'
            + self.field.encode()
            + b'"; filename="img.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + self.image + b"\r\n"
        ]
        if self.extra:
            key, value = self.extra
            parts.append(b"--" + b + f'\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
        return b"".join(parts) + b"--" + b + b"--\r\n"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": f"multipart/form-data; boundary={self.boundary}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def post(port: int, path: str, upload: Upload, timeout: float = 10) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("POST", path, body=upload.body(), headers=upload.headers())
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def first_answer(
    process: subprocess.Popen, port: int, path: str, upload: Upload, started: float, limit_seconds: float = 60
) -> float:
    """Seconds from `started` to the first successful answer to the upload; RuntimeError if the server dies or fails."""
    while time.perf_counter() - started < limit_seconds:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail(process.log_path)}")
        try:
            status, body = post(port, path, upload)
        except OSError:
            time.sleep(0.01)
            continue
        if 200 <= status < 300:
            return time.perf_counter() - started
        raise RuntimeError(f"first upload answered {status}: {body[:300]!r}\n{tail(process.log_path)}")
    raise RuntimeError(f"no answer within {limit_seconds} s:\n{tail(process.log_path)}")


def warm_up(port: int, path: str, upload: Upload, count: int) -> None:
    for _ in range(count):
        status, body = post(port, path, upload)
        if not 200 <= status < 300:
            raise RuntimeError(f"warm-up upload answered {status}: {body[:300]!r}")


# -- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


def run_wrk(
    port: int, path: str, upload: Upload, image_path: Path, *, seconds: int, connections: int, threads: int = 2
) -> WrkResult:
    """wrk with the seed pattern's multipart.lua against 127.0.0.1:port/path."""
    env = dict(os.environ, IMG=str(image_path), FIELD=upload.field, TOKEN=upload.token or "")
    env["EXTRA"] = "=".join(upload.extra) if upload.extra else ""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        f"http://{LOOPBACK}:{port}{path}",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = _WRK_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    rps, p50, p95, p99, errors = match.groups()
    return WrkResult(float(rps), float(p50), float(p95), float(p99), int(errors))


# -- memory ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def _kib(path: Path, field: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def server_cpu_seconds(master_pid: int) -> float:
    """CPU seconds (user + system) a pre-forking server's master and live workers have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in (master_pid, *_children(master_pid)):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@dataclass(frozen=True)
class WorkerMemory:
    rss_mb: float  # the largest worker's resident set (shared pages counted in full)
    pss_mb: float  # the workers' mean proportional set (shared pages split between their users)
    workers: int


def worker_memory(master_pid: int) -> WorkerMemory:
    """Memory of a pre-forking server's workers (the master's children)."""
    rss, pss = [], []
    for pid in _children(master_pid):
        with contextlib.suppress(OSError):
            rss.append(_kib(Path(f"/proc/{pid}/status"), "VmRSS"))
            pss.append(_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss"))
    if not rss:
        return WorkerMemory(float("nan"), float("nan"), 0)
    return WorkerMemory(max(rss) / 1024, sum(pss) / len(pss) / 1024, len(rss))


# -- PostgreSQL and S3 -----------------------------------------------------------------------


def add_postgres_argument(parser) -> None:
    """--postgres: the server a benchmark makes its scratch database on (MEDSIGHT_BENCH_POSTGRES_URL, else local)."""
    parser.add_argument(
        "--postgres",
        default=os.environ.get("MEDSIGHT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh, uniquely named database on the server admin_url points at; dropped on leaving. Yields its URL."""
    import psycopg2
    from psycopg2 import sql

    name = f"medsight_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(admin_url, connect_timeout=3)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()


S3_REGION = "us-east-1"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": S3_REGION}


@contextlib.contextmanager
def moto_s3(log_dir: Path) -> Iterator[dict[str, str]]:
    """A moto S3 server in its own process with one bucket; yields the app's S3 settings and credentials."""
    import boto3

    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    env = dict(os.environ, **S3_CREDENTIALS)
    with service("moto", command, env=env, cwd=REPO_ROOT, log_dir=log_dir) as process:
        endpoint = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited:\n{tail(process.log_path)}")
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start within 30 s") from None
                time.sleep(0.05)
        bucket = "medsight-bench"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=S3_REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.create_bucket(Bucket=bucket)
        yield {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": endpoint, "S3_REGION": S3_REGION, **S3_CREDENTIALS}
