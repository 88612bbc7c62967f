"""Where a job's chunks go to be scored: Celery workers through a broker, or a pool in this process.

The web side only ever calls enqueue(job_id, chunk_key). With CELERY_BROKER_URL set, that sends the
chunk task by name to the broker (workers on any host pick it up); without one, a small thread pool
in this process runs the scorer (workers.init_jobs hands it in), which is for one machine only.
"""

from __future__ import annotations

import abc
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask

from utils.errors import QueueUnavailable

log = logging.getLogger(__name__)

ChunkScorer = Callable[[uuid.UUID, str], None]
ReportSender = Callable[[uuid.UUID], None]


class JobQueue(abc.ABC):
    @abc.abstractmethod
    def enqueue(self, job_id: uuid.UUID, chunk_key: str) -> None:
        """Have the chunk stored at chunk_key scored, some time after this returns."""

    def enqueue_delivery(self, job_id: uuid.UUID, delay_s: float) -> None:
        """Have the job's reports that its PACS did not take sent again in delay_s seconds. A queue that cannot
        wait (the tests' synchronous one) leaves them to `flask jobs deliver`."""
        return None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running here (True), or timeout passes; for tests and shutdown."""
        return True


class CeleryJobQueue(JobQueue):
    def __init__(self, celery_app, task_name: str, queue: str, delivery_task_name: str | None = None) -> None:
        self._celery = celery_app
        self._task_name = task_name
        self._queue = queue
        self._delivery_task_name = delivery_task_name

    def enqueue(self, job_id: uuid.UUID, chunk_key: str) -> None:
        try:
            self._celery.send_task(self._task_name, args=[str(job_id), chunk_key], queue=self._queue)
        except Exception as exc:  # kombu raises its own and socket errors alike when the broker is away
            log.error("job queue unavailable: %s", type(exc).__name__)
            raise QueueUnavailable() from exc

    def enqueue_delivery(self, job_id: uuid.UUID, delay_s: float) -> None:
        if self._delivery_task_name is None:
            return
        try:
            self._celery.send_task(
                self._delivery_task_name, args=[str(job_id)], queue=self._queue, countdown=max(delay_s, 0)
            )
        except Exception as exc:  # the reports stay waiting in the database: `flask jobs deliver` sends them
            log.error("job queue unavailable for a report delivery: %s", type(exc).__name__)


class EmbeddedJobQueue(JobQueue):
    """A thread pool in this process; threads=0 scores in the caller's thread instead (tests)."""

    def __init__(
        self, app: Flask, score_chunk: ChunkScorer, threads: int, send_reports: ReportSender | None = None
    ) -> None:
        self._app = app
        self._score_chunk = score_chunk
        self._send_reports = send_reports
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="medsight-job") if threads else None
        self._pending: set[Future] = set()
        self._lock = threading.Lock()

    def enqueue(self, job_id: uuid.UUID, chunk_key: str) -> None:
        if self._pool is None:
            self._run(job_id, chunk_key)
            return
        future = self._pool.submit(self._run, job_id, chunk_key)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def enqueue_delivery(self, job_id: uuid.UUID, delay_s: float) -> None:
        if self._pool is None or self._send_reports is None:
            return
        timer = threading.Timer(max(delay_s, 0), self._deliver_later, args=(job_id,))
        timer.daemon = True  # a timer lost with the process leaves the reports waiting for `flask jobs deliver`
        timer.start()

    def _deliver_later(self, job_id: uuid.UUID) -> None:
        try:
            self._pool.submit(self._deliver, job_id)
        except RuntimeError:  # the pool is shutting down
            pass

    def _deliver(self, job_id: uuid.UUID) -> None:
        with self._app.app_context():
            try:
                self._send_reports(job_id)
            except Exception:
                log.exception("sending a job's reports to the PACS failed")

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)

    def _run(self, job_id: uuid.UUID, chunk_key: str) -> None:
        with self._app.app_context():
            try:
                self._score_chunk(job_id, chunk_key)
            except Exception:
                # The chunk stays pending in the database; a restart does not pick it up (no broker here).
                log.exception("scoring a job chunk failed")

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                return False
            except Exception:  # logged by _run
                pass
        return True
