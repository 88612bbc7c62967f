"""Waiting for a server a test started to answer."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests


def wait_until_answering(
    process: subprocess.Popen,
    url: str,
    log: Path,
    *,
    name: str = "the server",
    timeout_s: float = 90,
    interval_s: float = 0.5,
) -> None:
    """Return once url answers 200; fail the test, with the end of log, if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {log.read_text()[-3000:]}", pytrace=False)
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(interval_s)
    pytest.fail(f"{name} not ready after {timeout_s:g} s: {log.read_text()[-3000:]}", pytrace=False)
