"""A RabbitMQ node of the test's own, on free local ports, that a test may stop and start again.

The shared broker (127.0.0.1:5672) serves every other worker test; restarting it would cut whatever else
uses it. This node runs Debian's rabbitmq-server from a folder of its own (its database, log and
configuration there, no plugins, AMQP on 127.0.0.1 only) under a node name of its own, so that a restart
touches nothing else. Without the server the test is skipped, or failed where MEDSIGHT_REQUIRE_RABBITMQ=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import kombu
import pytest

from tests.support.orthanc import free_port

REQUIRE_VARIABLE = "MEDSIGHT_REQUIRE_RABBITMQ"
# Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user; the one under /usr/lib runs as we are.
SERVER_FOLDERS = ("/usr/lib/rabbitmq/bin", "/usr/lib/rabbitmq/sbin")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def _server_binary() -> str | None:
    for folder in SERVER_FOLDERS:
        found = shutil.which("rabbitmq-server", path=folder)
        if found:
            return found
    return shutil.which("rabbitmq-server")


class PrivateBroker:
    """One RabbitMQ node in folder; start() and stop() keep its ports and its database, as a restart does."""

    def __init__(self, binary: str, folder: Path) -> None:
        self._binary = binary
        self._folder = folder
        self._port = free_port()
        self._process: subprocess.Popen | None = None
        self._node = f"medsight-test-{uuid.uuid4().hex[:8]}@localhost"
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self._port}\n")
        (folder / "enabled_plugins").write_text("[].\n")
        self._environment = {
            **os.environ,
            "RABBITMQ_NODENAME": self._node,
            "RABBITMQ_NODE_PORT": str(self._port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(folder / "database"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self._port}//"

    def start(self) -> None:
        log = self._folder / "server.log"
        with log.open("ab") as output:
            self._process = subprocess.Popen(
                [self._binary], env=self._environment, stdout=output, stderr=subprocess.STDOUT, cwd=self._folder
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"RabbitMQ exited: {log.read_text()[-3000:]}", pytrace=False)
            if self._answers():
                return
            time.sleep(0.2)
        pytest.fail(f"RabbitMQ not ready after {START_TIMEOUT_S} s: {log.read_text()[-3000:]}", pytrace=False)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): durable queues and their persistent messages are kept on disk."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _answers(self) -> bool:
        try:
            with kombu.Connection(self.url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=0)
            return True
        except Exception:
            return False


@pytest.fixture
def private_broker(tmp_path_factory):
    """A RabbitMQ node of this test's own, running; stopped afterwards."""
    binary = _server_binary()
    if binary is None:
        message = "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
        if os.environ.get(REQUIRE_VARIABLE, "").strip() not in ("", "0"):
            pytest.fail(f"{message}, and {REQUIRE_VARIABLE} is set", pytrace=False)
        pytest.skip(message)
    broker = PrivateBroker(binary, tmp_path_factory.mktemp("rabbitmq"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
