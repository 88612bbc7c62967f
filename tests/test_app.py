"""The app on a fresh machine: no configuration at all still gives a working service."""

from __future__ import annotations

import pytest

from app import create_app

CONFIG_VARIABLES = (
    "MEDSIGHT_ENV",
    "DATABASE_URL",
    "JWT_SECRET_KEY",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "STORAGE_LOCAL_ROOT",
    "MAX_UPLOAD_MB",
    "MEDSIGHT_INSTANCE_PATH",
)


@pytest.fixture
def bare_environment(monkeypatch):
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_unconfigured_app_migrates_its_sqlite_and_serves_accounts(bare_environment, tmp_path, record_backend):
    instance = tmp_path / "instance"
    app = create_app(instance_path=instance)
    record_backend("sqlite")
    assert app.config["MEDSIGHT_ENV"] == "development"
    assert (instance / "medsight.sqlite3").is_file() and (instance / "dev-jwt-secret").is_file()
    client = app.test_client()
    assert client.get("/ready").status_code == 200
    register = client.post("/api/v1/auth/register", json={"email": "new@example.org", "password": "first-try-123"})
    assert register.status_code == 201
    token = client.post(
        "/api/v1/auth/login", json={"email": "new@example.org", "password": "first-try-123"}
    ).get_json()["access_token"]

    # A restart keeps the data and the secret: the token from before still works.
    restarted = create_app(instance_path=instance).test_client()
    me = restarted.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["email"] == "new@example.org"


@pytest.mark.parametrize(("flask_debug", "expected"), [(None, False), ("0", False), ("1", True)])
def test_python_app_py_starts_the_debugger_only_when_asked(
    bare_environment, monkeypatch, tmp_path, flask_debug, expected
):
    import app as app_module

    started = {}
    monkeypatch.setattr(app_module.Flask, "run", lambda self, **kwargs: started.update(kwargs, debug_app=self.debug))
    monkeypatch.setenv("MEDSIGHT_INSTANCE_PATH", str(tmp_path / "instance"))
    if flask_debug is None:
        monkeypatch.delenv("FLASK_DEBUG", raising=False)
    else:
        monkeypatch.setenv("FLASK_DEBUG", flask_debug)
    app_module.main()
    assert started["debug"] is expected
