"""Prometheus metrics: what the app counts and times, and the text a scrape of GET /metrics returns.

Under gunicorn every worker is its own process: with PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py
sets it to a fresh folder unless given), each process writes its figures to files there and a scrape
sums them over all workers, whichever one answers it; gunicorn.conf.py's child_exit hook retires a
dead worker's files. Without it (flask run, tests) the figures are this process's own.

Labels carry route templates, modalities, labels and error codes, never ids, emails or paths, so the
number of series stays small and no personal data leaves through a scrape.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Error codes that are the modality gate's refusals, and those that mean a backend is down.
GATE_REFUSAL_CODES = frozenset({"not_a_medical_image", "modality_mismatch"})
BACKEND_ERROR_CODES = {"storage_unavailable": "storage", "database_unavailable": "database"}
RATE_LIMITED_CODE = "too_many_requests"

# Requests take milliseconds; an upload with its heatmap tens of them; seconds mean trouble.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

REQUESTS = Counter(
    "medsight_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "medsight_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route"],
    buckets=_REQUEST_BUCKETS,
)
PREDICTIONS = Counter("medsight_predictions_total", "Images classified, by modality and label", ["modality", "label"])
INFERENCE_SECONDS = Histogram(
    "medsight_inference_seconds",
    "Time one model took to classify one image (with its heatmap where one was asked for)",
    ["modality", "version"],
    buckets=_INFERENCE_BUCKETS,
)
GATE_REFUSALS = Counter("medsight_gate_refusals_total", "Uploads the modality gate refused, by error code", ["code"])
QUALITY_REFUSALS = Counter(
    "medsight_quality_refusals_total",
    "Uploads refused as too poor a capture to read, by modality and reason",
    ["modality", "reason"],
)
BACKEND_ERRORS = Counter(
    "medsight_backend_errors_total", "Requests that failed because storage or the database was unavailable", ["backend"]
)
RATE_LIMITED = Counter("medsight_rate_limited_total", "Requests refused by a rate limit (429), by route", ["route"])
# One series per loaded model, value 1: the versions this process serves. "max" over the workers,
# which all load the same artifacts.
MODEL_INFO = Gauge(
    "medsight_model_info",
    "A model this app serves (value 1), by modality (or gate), version and artifact sha256",
    ["modality", "version", "sha256"],
    multiprocess_mode="max",
)


def observe_request(method: str, route: str, status: int, seconds: float, error_code: str | None) -> None:
    """Count one answered request, and what its error code (if any) says went wrong."""
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)
    if error_code is None:
        return
    if error_code in GATE_REFUSAL_CODES:
        GATE_REFUSALS.labels(error_code).inc()
    elif error_code in BACKEND_ERROR_CODES:
        BACKEND_ERRORS.labels(BACKEND_ERROR_CODES[error_code]).inc()
    elif error_code == RATE_LIMITED_CODE:
        RATE_LIMITED.labels(route).inc()


def observe_inference(modality: str, version: str, label: str, seconds: float) -> None:
    """Count one classification and how long its model took."""
    PREDICTIONS.labels(modality, label).inc()
    INFERENCE_SECONDS.labels(modality, version).observe(seconds)


def record_quality_refusal(modality: str, reason: str) -> None:
    """Count one upload refused by the capture-quality check."""
    QUALITY_REFUSALS.labels(modality, reason).inc()


def set_model_info(models: list[tuple[str, str, str]]) -> None:
    """Say which (modality, version, sha256) models this process serves."""
    for modality, version, sha256 in models:
        MODEL_INFO.labels(modality, version, sha256).set(1)


def exposition() -> tuple[bytes, str]:
    """The scrape: every metric in Prometheus' text format (summed over all workers in multiprocess mode)."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def retire_process(pid: int) -> None:
    """Forget a dead worker's live gauges (its counters stay summed in); for gunicorn's child_exit."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        multiprocess.mark_process_dead(pid)
