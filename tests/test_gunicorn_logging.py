"""gunicorn's own lines are the app's JSON lines: a log pipeline reads one JSON object per line, whoever wrote it.

Starts gunicorn as a node runs it (gunicorn.conf.py, production settings, one worker) on a free local port
with a fresh SQLite database, sends one request, stops it with SIGTERM and reads everything the process
group wrote to stdout and stderr.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
import requests

from bench.harness import free_port, service
from config import PROJECT_ROOT
from tests.support.servers import wait_until_answering

START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
APP_FIELDS = {"time", "level", "logger", "message", "request_id"}
# Written by the LiteRT runtime's native logger when the models load, past Python's logging: nothing in
# gunicorn's or the app's logging configuration reaches it.
NATIVE_RUNTIME_LINES = {"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."}
# Settings of the test runner's environment that would point the node elsewhere or change its logging.
INHERITED_SETTINGS_DROPPED = ("S3_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "GUNICORN_")


def test_every_line_gunicorn_writes_is_a_json_line(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith(INHERITED_SETTINGS_DROPPED)}
    env.update(
        MEDSIGHT_ENV="production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'medsight.sqlite3'}",
        JWT_SECRET_KEY="gunicorn-logging-test-secret-0123456789abcdef",
        MEDSIGHT_INSTANCE_PATH=str(tmp_path),
        STORAGE_LOCAL_ROOT=str(tmp_path / "photos"),
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    request_id = "gunicorn-logging-test-request"
    with service("gunicorn", command, env=env, cwd=PROJECT_ROOT, log_dir=tmp_path) as process:
        wait_until_answering(
            process, f"{url}/health", process.log_path, name="gunicorn", timeout_s=START_TIMEOUT_S, interval_s=0.2
        )
        answer = requests.get(f"{url}/health", headers={"X-Request-ID": request_id}, timeout=10)
        assert answer.status_code == 200
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(STOP_TIMEOUT_S) == 0
    lines = process.log_path.read_text().splitlines()

    entries = []
    for line in lines:
        if line in NATIVE_RUNTIME_LINES:
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}", pytrace=False)
    for entry in entries:
        assert isinstance(entry, dict) and APP_FIELDS <= entry.keys(), entry

    gunicorn_messages = [entry["message"] for entry in entries if entry["logger"] == "gunicorn.error"]
    for expected in (
        "Starting gunicorn",
        f"Listening at: {url}",
        "Booting worker with pid",
        "Handling signal: term",
        "Worker exiting",
        "Shutting down: Master",
    ):
        assert any(message.startswith(expected) for message in gunicorn_messages), (expected, gunicorn_messages)
    # The app's request line, once: gunicorn's handlers and the app's do not both write it.
    assert [entry["logger"] for entry in entries if entry["request_id"] == request_id] == ["medsight.request"]
    # Its access log stays off: the app's request line is the one per request.
    assert not [entry for entry in entries if entry["logger"] == "gunicorn.access"]
