"""Workers for batch jobs: Celery when a broker is configured, else a small pool inside the app process.

init_jobs(app) gives the app its job queue (app.extensions["job_queue"]). With CELERY_BROKER_URL it
also binds a Celery app the way Flask's documentation shows (celery_init_app: every task runs in an
app context), so the same create_app() serves web nodes, which only send chunks, and workers:

    flask --app app jobs worker            # or: celery -A make_celery worker
"""

from __future__ import annotations

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask

from constants import DELIVER_REPORTS_TASK, SCORE_CHUNK_TASK
from db import db
from managers.job_scoring import JobScoring
from managers.pacs import PacsReports
from services.job_queue import CeleryJobQueue, EmbeddedJobQueue
from workers import tasks  # noqa: F401  (its shared tasks join every Celery app made below)
from workers.cli import jobs_cli


def celery_init_app(app: Flask) -> Celery:
    """A Celery app bound to app: its settings from app.config, each task run inside app.app_context()."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(app.config))
    celery_app.set_default()
    app.extensions["celery"] = celery_app

    @worker_process_init.connect(weak=False)
    def _own_connections(**_kwargs) -> None:
        # A prefork child must not share the parent's pooled database connections.
        with app.app_context():
            db.engine.dispose(close=False)

    return celery_app


def celery_settings(config) -> dict:
    """Results live in our rows (no result backend); a chunk is acknowledged only once it is scored, so
    a worker that dies mid-chunk leaves it to the broker to hand to another; one chunk at a time each."""
    return {
        "broker_url": config["CELERY_BROKER_URL"],
        "task_default_queue": config["CELERY_QUEUE"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        # A web node whose broker is away answers 503 within seconds instead of hanging the request.
        "broker_transport_options": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        "worker_hijack_root_logger": False,
    }


def init_jobs(app: Flask) -> None:
    """Give app its job queue (the broker's, or the embedded pool of JOB_WORKER_THREADS threads) and the
    `flask jobs` commands."""
    app.cli.add_command(jobs_cli)
    if app.config["CELERY_BROKER_URL"]:
        celery_app = celery_init_app(app)
        app.extensions["job_queue"] = CeleryJobQueue(
            celery_app, SCORE_CHUNK_TASK, app.config["CELERY_QUEUE"], DELIVER_REPORTS_TASK
        )
        return
    app.extensions["job_queue"] = EmbeddedJobQueue(
        app, JobScoring.score_chunk, app.config["JOB_WORKER_THREADS"], PacsReports.deliver_and_schedule
    )
