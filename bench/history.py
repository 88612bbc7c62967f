"""History-list timing at scale: 1,000,000 predictions on PostgreSQL, then GET /api/v1/predictions.

Usage: python bench/history.py [--rows 1000000] [--users 4] [--repeats 15] [--profile N]
       [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--keep | --reuse NAME]

Creates a fresh database, builds the schema with the migrations, bulk-loads the rows with COPY
(spread evenly over the users and over two years), runs VACUUM ANALYZE, then times the history
endpoint through the Flask test client as one user: the first page, a filtered page (one
modality, malignant only), a deep page (offset 100,000) and the same deep page by cursor.
Prints the median and p95 in ms of each, including the total count every page carries, and
checks that the cursor gives the same items as the page number. The database is dropped at the end, unless
--keep (leave it for EXPLAIN ANALYZE) or --reuse NAME (time a kept database again: its schema is
brought up to the newest migration, nothing is loaded, and it is left in place; drop it yourself).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flask_migrate  # noqa: E402
import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from app import MIGRATIONS_DIR, create_app  # noqa: E402
from bench.harness import add_postgres_argument, app_log_in, load_average  # noqa: E402
from bench.upload_profile import top_functions  # noqa: E402
from cnn_model.modalities import SPECS  # noqa: E402
from config import TestingConfig  # noqa: E402
from constants import Role  # noqa: E402
from db import db  # noqa: E402
from managers.users import UserManager  # noqa: E402

PASSWORD = "bench-password-1"
COPY_BATCH = 100_000
COLUMNS = (
    "id",
    "owner_id",
    "modality",
    "label",
    "confidence",
    "probabilities",
    "is_positive",
    "model_name",
    "model_version",
    "model_sha256",
    "image_key",
    "image_content_type",
    "image_sha256",
    "image_width",
    "image_height",
    "heatmap_key",
    "note",
    "created_at",
)


def admin_connection(url: str):
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def row_templates() -> list[tuple]:
    """(modality, label, probabilities as a CSV field, is_positive) for every class of every modality."""
    templates = []
    for spec in SPECS.values():
        for top in spec.classes:
            rest = (1 - 0.8) / (len(spec.classes) - 1)
            probabilities = {c.name: 0.8 if c.name == top.name else rest for c in spec.classes}
            quoted = '"' + json.dumps(probabilities).replace('"', '""') + '"'  # one CSV field
            templates.append((spec.name, top.name, quoted, "t" if top.is_positive else "f"))
    return templates


def csv_rows(owner_ids: list[str], count: int, start: datetime, span_seconds: int, rng: random.Random):
    templates = row_templates()
    sha = "0" * 64
    for i in range(count):
        modality, label, probabilities, positive = templates[rng.randrange(len(templates))]
        created = start + timedelta(seconds=span_seconds * i / count + rng.random())
        key = uuid.uuid4().hex
        yield (
            f"{uuid.uuid4()},{owner_ids[i % len(owner_ids)]},{modality},{label},0.8,"
            f"{probabilities},{positive},bench-{modality},1.0.0,{sha},"
            f"photos/bench/{key},image/jpeg,{sha},600,450,heatmaps/bench/{key},,{created.isoformat()}\n"
        )


def bulk_load(database_url: str, owner_ids: list[str], rows: int) -> float:
    started = time.perf_counter()
    rng = random.Random(42)
    now = datetime.now(UTC)
    span = int(timedelta(days=730).total_seconds())
    copy = sql.SQL("COPY predictions ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        generator = csv_rows(owner_ids, rows, now - timedelta(seconds=span), span, rng)
        loaded = 0
        while loaded < rows:
            batch = io.StringIO("".join(next(generator) for _ in range(min(COPY_BATCH, rows - loaded))))
            cursor.copy_expert(copy.as_string(connection), batch)
            loaded += min(COPY_BATCH, rows - loaded)
            print(f"  loaded {loaded:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
    vacuum = admin_connection(database_url)
    with vacuum.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE predictions")
    vacuum.close()
    return time.perf_counter() - started


def time_requests(client, headers, url: str, repeats: int) -> tuple[float, float, dict]:
    body = client.get(url, headers=headers).get_json()  # warm-up (and the answer, for the report)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_json()
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))], body


def profile_first_page(client, headers, requests: int) -> str:
    """cProfile of `requests` GETs of the first page: MedSight's own functions, then every function by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get("/api/v1/predictions", headers=headers)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    return "\n".join(
        [
            f"profile of {requests} first pages ({load_average()}):",
            *top_functions(stats, requests, 15, cumulative=True, project_only=True),
            *top_functions(stats, requests, 15, cumulative=False, project_only=False),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    add_postgres_argument(parser)
    parser.add_argument("--keep", action="store_true", help="leave the database in place at the end")
    parser.add_argument("--reuse", metavar="NAME", help="time a database kept by --keep (not dropped)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N requests of the first page")
    args = parser.parse_args()

    name = args.reuse or f"medsight_bench_{os.getpid()}"
    keep = args.keep or bool(args.reuse)
    admin = admin_connection(args.postgres)
    if not args.reuse:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = psycopg2.extensions.parse_dsn(args.postgres) | {"dbname": name}
    dsn = " ".join(f"{k}={v}" for k, v in database_url.items())
    sqlalchemy_url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    app = None
    try:
        with tempfile.TemporaryDirectory() as tmp, app_log_in(Path(tmp) / "app.log"):
            app = create_app(
                TestingConfig({"DATABASE_URL": sqlalchemy_url, "STORAGE_LOCAL_ROOT": f"{tmp}/photos"}, tmp),
                instance_path=tmp,
            )
            with app.app_context():
                flask_migrate.upgrade(directory=MIGRATIONS_DIR)
                if not args.reuse:
                    users = [
                        UserManager.create(f"bench{i}@example.org", PASSWORD, role=Role.PATIENT)
                        for i in range(args.users)
                    ]
                    owner_ids = [str(u.id) for u in users]
            if args.reuse:
                print(f"database {name}: reused as it is (schema upgraded, nothing loaded)", flush=True)
            else:
                print(
                    f"database {name}: loading {args.rows:,} predictions for {args.users} users with COPY ...",
                    flush=True,
                )
                load_seconds = bulk_load(dsn, owner_ids, args.rows)
                print(f"loaded + VACUUM ANALYZE in {load_seconds:.1f} s")

            client = app.test_client()
            token = client.post("/api/v1/auth/login", json={"email": "bench0@example.org", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
            deep_page = 100_000 // 100 + 1
            cases = {
                "first page (20, newest first)": "/api/v1/predictions",
                "filtered page (breast, malignant)": "/api/v1/predictions?modality=breast&is_malignant=true",
                f"deep page ({deep_page}, per_page=100)": f"/api/v1/predictions?page={deep_page}&per_page=100",
            }
            print(
                f"GET as one user of {args.users} ({args.rows // args.users:,} rows each), "
                f"{args.repeats} runs each, Flask test client, PostgreSQL:"
            )
            # The same deep page by cursor: next_cursor of page deep_page - 1 continues where it ends.
            cursor = client.get(f"/api/v1/predictions?page={deep_page - 1}&per_page=100", headers=headers)
            cursor_url = f"/api/v1/predictions?per_page=100&cursor={cursor.get_json()['next_cursor']}"
            cases[f"deep page by cursor (same {deep_page})"] = cursor_url
            bodies = {}
            for label, url in cases.items():
                median, p95, body = time_requests(client, headers, url, args.repeats)
                bodies[url] = body
                print(
                    f"  {label:38s} median {median:7.1f} ms  p95 {p95:7.1f} ms  "
                    f"(total {body['total']:,}, {len(body['items'])} items)"
                )
            by_page = [item["id"] for item in bodies[f"/api/v1/predictions?page={deep_page}&per_page=100"]["items"]]
            assert [item["id"] for item in bodies[cursor_url]["items"]] == by_page, "cursor and page disagree"
            if args.profile:
                print(profile_first_page(client, headers, args.profile))
    finally:
        if app is not None:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        if keep:
            print(f"kept database {name} (drop it with: DROP DATABASE {name} WITH (FORCE))")
        else:
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            print(f"dropped database {name}")
        admin.close()


if __name__ == "__main__":
    main()
