"""ModelManager: models load once per app, and a missing or altered artifact is a clear 503."""

from __future__ import annotations

import json
import shutil

from cnn_model.modalities import MODALITIES
from cnn_model.runtime import ARTIFACTS_DIR, ModelRegistry
from tests.resources.helpers import assert_error, bearer
from tests.support.images import sample_image


def test_the_registry_is_loaded_once_and_shared(app, modality):
    registry = app.extensions["models"]
    assert isinstance(registry, ModelRegistry)
    assert registry.get(modality) is registry.get(modality)
    assert modality in registry.modalities


def test_no_models_means_503_model_unavailable_and_not_ready(build_app, tmp_path, modality):
    app = build_app(MODEL_DIR=str(tmp_path / "empty"))
    client = app.test_client()
    assert client.get("/api/v1/models").get_json()["missing_modalities"] == list(MODALITIES)
    ready = assert_error(client.get("/ready"), 503, "not_ready")
    assert ready["details"]["checks"]["models"]["ok"] is False
    client.post("/api/v1/auth/register", json={"email": "m@example.org", "password": "correct-horse-42"})
    token = client.post(
        "/api/v1/auth/login", json={"email": "m@example.org", "password": "correct-horse-42"}
    ).get_json()
    path = sample_image(modality)
    response = client.post(
        "/api/v1/predictions",
        data={"modality": modality, "file": (path.open("rb"), path.name)},
        headers=bearer(token["access_token"]),
    )
    assert_error(response, 503, "model_unavailable")


def test_an_altered_artifact_is_refused(build_app, tmp_path, modality):
    copied = tmp_path / "artifacts" / modality
    shutil.copytree(ARTIFACTS_DIR / modality, copied)
    card = json.loads((copied / "card.json").read_text())
    card["artifact"]["sha256"] = "0" * 64
    (copied / "card.json").write_text(json.dumps(card))
    app = build_app(MODEL_DIR=str(tmp_path / "artifacts"))
    checks = assert_error(app.test_client().get("/ready"), 503, "not_ready")["details"]["checks"]
    assert checks["models"]["ok"] is False and "ArtifactError" in checks["models"]["error"]


def test_ready_reports_every_modality_loaded(client, installed_modalities):
    assert installed_modalities == MODALITIES, "every modality must ship a model"
    response = client.get("/ready")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["models"] == {"ok": True, "error": None}
