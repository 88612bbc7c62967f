"""gunicorn settings for serving MedSight in production: `gunicorn -c gunicorn.conf.py`.

Environment: BIND (host:port, or unix:/path), else HOST (127.0.0.1) and PORT (8000); WEB_CONCURRENCY
(worker processes; default one per CPU this process may run on); GUNICORN_THREADS (threads per
worker; default 1); PROMETHEUS_MULTIPROC_DIR (where the workers' metrics meet; default a fresh temporary
folder, removed at exit). Command-line flags override all of these.

The app and its models are loaded once in the master, before the workers are forked (preload_app):
the workers share those pages instead of each holding its own copy, and a new worker is ready as
soon as it is forked. Whatever must not be shared across a fork (database connections) is dropped in
post_fork.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from pathlib import Path

import gunicorn.http.wsgi
import gunicorn.util

# gunicorn names itself in every response's Server header; say the service's name instead (app.SERVER_HEADER).
gunicorn.http.wsgi.SERVER = "MedSight"


def _write_json_error(sock, status_int, reason, mesg):
    """gunicorn's own refusals (a request line over 4094 bytes, over 100 headers or one over 8190 bytes: 400/431)
    in the app's error shape instead of an HTML page."""
    code = "internal_error" if status_int >= 500 else reason.lower().replace(" ", "_")
    error = {"code": code, "message": f"The server refused the request: {reason}.", "details": {"reason": mesg}}
    body = json.dumps({"error": error}).encode("utf-8")
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nServer: {gunicorn.http.wsgi.SERVER}\r\nX-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = _write_json_error

wsgi_app = "app:create_app()"

# Prometheus' multiprocess mode: every worker writes its metrics to files in this folder and GET /metrics
# sums them, whichever worker answers. Set before the app (and prometheus_client) is imported; a fresh
# folder of its own unless the operator names one.
_OWN_METRICS_DIR = None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else tempfile.mkdtemp(prefix="medsight-metrics-")
if _OWN_METRICS_DIR:  # also when it was set but empty
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _OWN_METRICS_DIR

bind = [os.environ.get("BIND") or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or len(os.sched_getaffinity(0)) or 1)
threads = int(os.environ.get("GUNICORN_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"

preload_app = True
# An upload is classified in milliseconds; a request still running after 30 s is stuck, not busy.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Uploads are bounded by MAX_UPLOAD_MB in the app; headers by gunicorn's own limits.
# Off unless the operator asks: the app logs every request itself (medsight.request), without the
# path and query string that gunicorn's access line holds.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


def _gunicorn_logging(access_log_target: str | None) -> dict:
    """gunicorn's own lines (start, workers, signals, errors) as the app's JSON lines, so that a log pipeline
    reads one JSON object per line whoever wrote it.

    gunicorn applies this with dictConfig over its defaults after setting up its own handlers, and again on
    every reload (HUP); the logger classes are imported only then, after PROMETHEUS_MULTIPROC_DIR is set.
    """
    handlers: dict = {
        # The app's own handler: configure_logging finds it on the root logger and adds no second one.
        "stderr_json": {"class": "utils.request_log.StderrHandler", "formatter": "json", "filters": ["request_id"]},
    }
    access_handlers = []
    if access_log_target:
        access_handlers = ["access_json"]
        handlers["access_json"] = (
            {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
            if access_log_target == "-"
            else {"class": "logging.FileHandler", "formatter": "json", "filename": access_log_target}
        )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "utils.request_log.JsonLogFormatter"}},
        "filters": {"request_id": {"()": "utils.request_log.RequestIdFilter"}},
        "handlers": handlers,
        # Replaces gunicorn's default root handler, which would print every propagated record in plain text.
        # No level: the app's configure_logging sets it, and a reload (HUP) must not undo that.
        "root": {"handlers": ["stderr_json"]},
        "loggers": {
            # No level here: the one gunicorn set from loglevel stays. Propagates to the root's JSON handler.
            "gunicorn.error": {"handlers": [], "propagate": True},
            # With logconfig_dict gunicorn emits an access record for every request whatever accesslog says;
            # without a handler of its own and not propagated, it goes nowhere unless the operator asked for it.
            "gunicorn.access": {"handlers": access_handlers, "propagate": False},
        },
    }


# Where the error and access lines go is decided here, not by --error-logfile or --access-logfile.
logconfig_dict = _gunicorn_logging(accesslog)


def _app(server):
    """The Flask app the master preloaded."""
    return server.app.wsgi()


def when_ready(server):
    # Load and verify every model in the master, so the forked workers share them (and a broken
    # artifact shows in the master's log at start-up, not in the first request's).
    from managers.models import ModelManager

    app = _app(server)
    with app.app_context():
        installed = ModelManager.installed()
    server.log.info("models loaded before forking: %s", ", ".join(installed) or "none")
    # Everything loaded so far lives as long as the process: keep the collector from walking it, which
    # would write to (and so copy) every page of it in each worker.
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    # A database connection opened in the master (migrations on the embedded default) must not be
    # shared by two processes: each worker starts with an empty pool of its own.
    from db import db

    app = _app(server)
    with app.app_context():
        db.engine.dispose(close=False)


def on_starting(server):
    # Figures left in the metrics folder by an earlier run would be summed into this one's.
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker):
    # A dead worker's live gauges leave the sums; its counters stay counted.
    from services.metrics import retire_process

    retire_process(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
