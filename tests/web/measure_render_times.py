"""How long the server takes to render each page (median of repeated requests through the test client).

    .venv/bin/python -m tests.web.measure_render_times [--items 100] [--repeat 30]

Builds a throwaway app on a temporary SQLite file, signs a patient and an admin in through the
pages, makes --items predictions from the fixture images, and times each page with the history
showing all of them on one page. Prints one line per page; the target is under 30 ms.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import tempfile
import time
from pathlib import Path

import flask_migrate

from app import MIGRATIONS_DIR, create_app
from cnn_model.modalities import MODALITIES
from config import TestingConfig
from constants import Role
from managers.predictions import PredictionManager
from managers.users import UserManager
from tests.support.images import sample_image

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _sign_in(client, email: str, password: str) -> None:
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.status_code


def _median_ms(client, path: str, repeat: int) -> float:
    assert client.get(path).status_code == 200, path  # warm up (templates compiled, models loaded)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", help="an empty database to fill (default: a temporary SQLite file)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="medsight-render-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'db.sqlite3'}"
    environ = {"DATABASE_URL": database_url, "STORAGE_LOCAL_ROOT": str(tmp / "photos")}
    app = create_app(TestingConfig(environ, tmp / "instance"), instance_path=tmp / "instance")
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        patient = UserManager.create("patient@example.org", "render-pass-1234")
        UserManager.create("admin@example.org", "render-pass-1234", role=Role.ADMIN)
        images = [sample_image(m).read_bytes() for m in MODALITIES]
        for i in range(args.items):
            modality = MODALITIES[i % len(MODALITIES)]
            last = PredictionManager.create(patient, modality, io.BytesIO(images[i % len(images)]), f"note {i}")
        last_id = last.id

    import views.predictions

    views.predictions.HISTORY_PAGE_SIZE = args.items  # every item on one history page
    patient_client, admin_client = app.test_client(), app.test_client()
    _sign_in(patient_client, "patient@example.org", "render-pass-1234")
    _sign_in(admin_client, "admin@example.org", "render-pass-1234")
    pages = [
        (patient_client, "/"),
        (patient_client, "/upload"),
        (patient_client, f"/predictions/{last_id}"),
        (patient_client, "/history"),
        (patient_client, "/history?modality=chest_xray&flagged=no"),
        (patient_client, "/account"),
        (patient_client, "/models"),
        (patient_client, f"/models/{MODALITIES[0]}"),
        (admin_client, "/admin/users"),
        (admin_client, "/admin/predictions"),
        (admin_client, f"/admin/predictions/{last_id}"),
        (admin_client, "/admin/audit"),
    ]
    print(f"{args.items} predictions on {database_url.split(':', 1)[0]}, median of {args.repeat} renders each")
    for client, path in pages:
        print(f"{_median_ms(client, path, args.repeat):7.1f} ms  {path}")


if __name__ == "__main__":
    main()
