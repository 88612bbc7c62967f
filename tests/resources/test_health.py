"""/health says the process lives; /ready says whether the database and the storage can be used."""

from __future__ import annotations

import pytest

from cnn_model.modalities import MODALITIES
from services.storage import LocalFolderStorage
from tests.resources.helpers import assert_error
from utils.errors import StorageUnavailable


class UnreachableStorage(LocalFolderStorage):
    """The storage seam failing the way a dead bucket does."""

    def check(self) -> None:
        raise StorageUnavailable(details={"backend": "test", "reason": "unreachable"})


@pytest.fixture
def broken_storage(app, tmp_path):
    working = app.extensions["storage"]
    app.extensions["storage"] = UnreachableStorage(tmp_path)
    yield
    app.extensions["storage"] = working


def test_health_answers_without_auth_in_the_original_apps_shape(client):
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "healthy" and body["model_loaded"] is True
    assert set(body["models"]) == set(MODALITIES) and body["gate"]


def test_health_is_503_when_the_models_cannot_be_loaded(build_app, tmp_path):
    app = build_app(MODEL_DIR=str(tmp_path / "broken"))
    (tmp_path / "broken" / "breast").mkdir(parents=True)
    (tmp_path / "broken" / "breast" / "card.json").write_text("{}")
    error = assert_error(app.test_client().get("/health"), 503, "models_not_loaded")
    assert error["details"] == {"status": "unhealthy", "model_loaded": False}


def test_ready_checks_database_and_storage(client):
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True and body["checks"]["storage"]["ok"] is True


def test_ready_is_503_naming_storage_when_storage_fails(client, broken_storage):
    error = assert_error(client.get("/ready"), 503, "not_ready")
    checks = error["details"]["checks"]
    assert checks["storage"] == {"ok": False, "error": "storage_unavailable"}
    assert checks["database"]["ok"] is True
    assert "storage" in error["message"]


def test_ready_is_503_naming_database_when_database_is_down(build_app):
    # Port 9 (discard) on localhost: nothing listens, so the connection is refused at once.
    app = build_app(migrate=False, DATABASE_URL="postgresql://postgres@127.0.0.1:9/medsight")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    error = assert_error(client.get("/ready"), 503, "not_ready")
    assert error["details"]["checks"]["database"]["ok"] is False
    assert error["details"]["checks"]["storage"]["ok"] is True


def test_requests_needing_the_database_get_503_when_it_is_down(build_app):
    app = build_app(migrate=False, DATABASE_URL="postgresql://postgres@127.0.0.1:9/medsight")
    response = app.test_client().post("/api/v1/auth/login", json={"email": "a@b.org", "password": "whatever-123"})
    assert_error(response, 503, "database_unavailable")
