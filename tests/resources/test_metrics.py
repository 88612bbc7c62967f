"""GET /metrics: Prometheus text with requests, latencies, predictions, gate refusals, backend errors, 429s and
model versions; open in development and testing, closed in production unless METRICS_TOKEN is given."""

from __future__ import annotations

import io

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from config import ProductionConfig
from tests.resources.helpers import assert_error, bearer
from tests.support.images import sample_image
from tests.support.synthetic import foreign_png

METRICS_TOKEN = "scrape-secret-0123456789"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(response) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from a scrape's text."""
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def test_requests_are_counted_by_route_template_and_status(client, patient):
    route = "/api/v1/predictions/<uuid:prediction_id>"
    before = sample("medsight_http_requests_total", method="GET", route=route, status="404")
    client.get("/api/v1/predictions/00000000-0000-0000-0000-000000000000", headers=patient.headers)
    after = scraped(client.get("/metrics"))
    key = ("medsight_http_requests_total", (("method", "GET"), ("route", route), ("status", "404")))
    assert after[key] == before + 1
    assert ("medsight_http_request_duration_seconds_count", (("method", "GET"), ("route", route))) in after


def test_unknown_paths_share_one_route_label(client):
    before = sample("medsight_http_requests_total", method="GET", route="<unmatched>", status="404")
    client.get("/no/such/thing/42")
    client.get("/another/missing/path")
    assert sample("medsight_http_requests_total", method="GET", route="<unmatched>", status="404") == before + 2
    text = client.get("/metrics").get_data(as_text=True)
    assert "/no/such/thing" not in text


def test_a_prediction_counts_its_modality_label_and_inference_time(client, upload, patient):
    response = upload(patient, "chest_xray", sample_image("chest_xray", "pneumonia"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    families = scraped(client.get("/metrics"))
    assert families[("medsight_predictions_total", (("label", body["label"]), ("modality", "chest_xray")))] >= 1
    version = body["model"]["version"]
    assert families[("medsight_inference_seconds_count", (("modality", "chest_xray"), ("version", version)))] >= 1
    info = (
        "medsight_model_info",
        (("modality", "chest_xray"), ("sha256", body["model"]["sha256"]), ("version", version)),
    )
    assert families[info] == 1


def test_gate_refusals_are_counted_by_code(upload, patient):
    before = sample("medsight_gate_refusals_total", code="not_a_medical_image")
    assert_error(upload(patient, None, data=foreign_png("noise"), filename="x.png"), 422, "not_a_medical_image")
    before_mismatch = sample("medsight_gate_refusals_total", code="modality_mismatch")
    assert_error(upload(patient, "skin_lesion", sample_image("chest_xray")), 422, "modality_mismatch")
    assert sample("medsight_gate_refusals_total", code="not_a_medical_image") == before + 1
    assert sample("medsight_gate_refusals_total", code="modality_mismatch") == before_mismatch + 1


def test_storage_errors_are_counted(client, app, patient, monkeypatch):
    storage = app.extensions["storage"]

    def refuse(*_args, **_kwargs):
        from utils.errors import StorageUnavailable

        raise StorageUnavailable()

    monkeypatch.setattr(storage, "put_object", refuse)
    before = sample("medsight_backend_errors_total", backend="storage")
    data = sample_image("breast").read_bytes()
    response = client.post(
        "/api/v1/predictions",
        data={"modality": "breast", "file": (io.BytesIO(data), "b.png")},
        headers=patient.headers,
        content_type="multipart/form-data",
    )
    assert_error(response, 503, "storage_unavailable")
    assert sample("medsight_backend_errors_total", backend="storage") == before + 1


def test_rate_limit_refusals_are_counted(build_app):
    app = build_app(ANONYMOUS_PREDICT="true", ANONYMOUS_PREDICT_RATE="1 per minute")
    client = app.test_client()
    data = sample_image("chest_xray").read_bytes()
    before = sample("medsight_rate_limited_total", route="/predict")
    statuses = [
        client.post("/predict", data={"file": (io.BytesIO(data), "x.jpeg")}, content_type="multipart/form-data")
        for _ in range(2)
    ]
    assert [r.status_code for r in statuses] == [200, 429]
    assert sample("medsight_rate_limited_total", route="/predict") == before + 1


def test_production_keeps_metrics_closed_without_a_token(tmp_path):
    from app import create_app

    environ = {"JWT_SECRET_KEY": "x" * 40, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}"}
    app = create_app(ProductionConfig(environ, tmp_path), instance_path=tmp_path)
    assert_error(app.test_client().get("/metrics"), 404, "not_found")


@pytest.mark.parametrize("environment", ["testing", "production"])
def test_with_a_metrics_token_the_scraper_must_send_it(tmp_path, environment):
    from app import create_app
    from config import CONFIGS

    environ = {
        "JWT_SECRET_KEY": "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    client = create_app(CONFIGS[environment](environ, tmp_path), instance_path=tmp_path).test_client()
    assert_error(client.get("/metrics"), 401, "token_missing")
    assert_error(client.get("/metrics", headers=bearer("not-the-token-at-all")), 401, "token_invalid")
    assert client.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 200
