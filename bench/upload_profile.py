"""Where one upload's time goes: cProfile over N uploads through the whole app, in one process.

Usage: python bench/upload_profile.py [--uploads 200] [--postgres URL | --sqlite] [--image PATH] [--lines 25]
       [--bare]

The app runs with the production settings on a scratch database (a fresh PostgreSQL database,
dropped at the end, or a temporary SQLite file) and a temporary photo folder; a user with a
personal access token posts the image as `POST /api/v1/predictions` through Flask's test client
(the multipart body built once, so the client's own encoding is not profiled). Prints the mean
milliseconds per upload, MedSight's own functions by cumulative time and every function by own time.
With --bare no profiler runs: it prints the wall and CPU milliseconds per upload, for a sampling profiler
outside the process, which costs the uploads next to nothing (py-spy, requirements-dev.txt; the flame
graphs in bench/profiles/ were made so):

    py-spy record --rate 250 -o bench/profiles/upload.svg -- .venv/bin/python bench/upload_profile.py --bare
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    REPO_ROOT,
    SAMPLE_IMAGE,
    UNLIMITED_UPLOAD_SETTINGS,
    Upload,
    add_postgres_argument,
    app_log_in,
    load_average,
    postgres_database,
)

UPLOAD_PATH = "/api/v1/predictions"
MODALITY = "skin_lesion"
FALLBACK_IMAGE = REPO_ROOT / "tests" / "fixtures" / "images"
PASSWORD = "bench-password-1"


def sample_image() -> Path:
    """The seed pattern's 600x450 photo, or (without ../shared) a committed skin-lesion fixture."""
    if SAMPLE_IMAGE.is_file():
        return SAMPLE_IMAGE
    return next(p for p in sorted(FALLBACK_IMAGE.rglob("*.jpg")) if MODALITY in str(p))


def production_app(database_url: str, folder: Path, extra: dict[str, str] | None = None):
    """The app as gunicorn serves it (production settings) on the given database, schema migrated."""
    import flask_migrate

    from app import MIGRATIONS_DIR, create_app
    from config import ProductionConfig

    environ = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": secrets.token_hex(32),
        "STORAGE_LOCAL_ROOT": str(folder / "photos"),
        **UNLIMITED_UPLOAD_SETTINGS,
        **(extra or {}),
    }
    app = create_app(ProductionConfig(environ, folder), instance_path=folder)
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
    return app


def issue_token(app) -> str:
    """A patient account and a personal access token for it, made through the managers; returns the secret."""
    from constants import Role
    from managers.tokens import TokenManager
    from managers.users import UserManager

    with app.app_context():
        user = UserManager.create(f"bench-{secrets.token_hex(4)}@example.org", PASSWORD, role=Role.PATIENT)
        return TokenManager.create(user, "bench").secret


def release(app) -> None:
    from db import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def profile_uploads(database_url: str, image: bytes, uploads: int, lines: int = 25, bare: bool = False) -> str:
    """Profile `uploads` uploads on a fresh app over database_url; returns the report (bare: only their time)."""
    with tempfile.TemporaryDirectory(prefix="medsight-profile-") as tmp, app_log_in(Path(tmp) / "app.log"):
        app = production_app(database_url, Path(tmp))
        try:
            upload = Upload(image=image, extra=("modality", MODALITY), token=issue_token(app))
            body, headers = upload.body(), upload.headers()
            client = app.test_client()

            def post() -> None:
                response = client.post(UPLOAD_PATH, data=body, headers=headers)
                if response.status_code != 201:
                    raise RuntimeError(f"upload answered {response.status_code}: {response.get_data()[:300]!r}")

            for _ in range(10):
                post()  # warm-up: models loaded, connections open, caches filled
            if bare:
                return _timed(post, uploads)
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            for _ in range(uploads):
                post()
            profiler.disable()
            elapsed = time.perf_counter() - started
        finally:
            release(app)
    header = (
        f"{uploads} uploads in process: {elapsed / uploads * 1000:.1f} ms per upload under the profiler "
        f"({load_average()})"
    )
    stats = pstats.Stats(profiler).stats
    return "\n".join(
        [
            header,
            "-- MedSight's own functions by cumulative time --",
            *top_functions(stats, uploads, lines, cumulative=True, project_only=True),
            "-- every function by own time --",
            *top_functions(stats, uploads, lines, cumulative=False, project_only=False),
        ]
    )


def _timed(post, uploads: int) -> str:
    """Wall and CPU milliseconds per upload over `uploads` calls of post, no profiler running, and the
    garbage collector's pauses meanwhile (the heap loaded before is frozen, as gunicorn.conf.py does)."""
    pauses: list[float] = []
    began: list[float] = []

    def clock(phase: str, _info: dict) -> None:
        if phase == "start":
            began.append(time.perf_counter())
        elif began:
            pauses.append(time.perf_counter() - began.pop())

    gc.collect()
    gc.freeze()
    gc.callbacks.append(clock)
    started_cpu, started = time.process_time(), time.perf_counter()
    try:
        for _ in range(uploads):
            post()
    finally:
        gc.callbacks.remove(clock)
        gc.unfreeze()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return (
        f"{uploads} uploads in process: {elapsed / uploads * 1000:.2f} ms wall, {cpu / uploads * 1000:.2f} ms CPU "
        f"per upload; garbage collector: {len(pauses) / uploads:.1f} pauses per upload, "
        f"{sum(pauses) / uploads * 1000:.3f} ms per upload, longest {max(pauses, default=0) * 1000:.2f} ms "
        f"(gc thresholds {gc.get_threshold()}; {load_average()})"
    )


def top_functions(stats: dict, uploads: int, lines: int, *, cumulative: bool, project_only: bool) -> list[str]:
    """The profile's top rows, in milliseconds and calls per upload."""
    rows = []
    for (file, line, name), (_primitive, calls, own, total, _callers) in stats.items():
        path = Path(file)
        ours = path.is_relative_to(REPO_ROOT) and "site-packages" not in path.parts
        if project_only and (not ours or path.is_relative_to(REPO_ROOT / "bench")):
            continue
        where = f"{path.relative_to(REPO_ROOT)}:{line}" if ours else f"{path.name}:{line}"
        label = name if file == "~" else f"{name} ({where})"
        rows.append((total if cumulative else own, total, own, calls, label))
    rows.sort(reverse=True)
    out = [f"{'cum ms':>8}{'own ms':>8}{'calls':>7}  function   (per request)"]
    for _key, total, own, calls, label in rows[:lines]:
        out.append(f"{total / uploads * 1000:>8.2f}{own / uploads * 1000:>8.2f}{calls / uploads:>7.1f}  {label}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--lines", type=int, default=25)
    parser.add_argument("--image", type=Path, default=None)
    add_postgres_argument(parser)
    parser.add_argument("--sqlite", action="store_true", help="profile on a temporary SQLite file instead")
    parser.add_argument("--bare", action="store_true", help="no profiler: time the uploads (for py-spy)")
    args = parser.parse_args()
    image = (args.image or sample_image()).read_bytes()
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="medsight-profile-db-") as tmp:
            print(profile_uploads(f"sqlite:///{tmp}/bench.sqlite3", image, args.uploads, args.lines, args.bare))
    else:
        with postgres_database(args.postgres) as url:
            print(profile_uploads(url, image, args.uploads, args.lines, args.bare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
