"""What a test session gathers for after its last test, whether it runs in one process or in pytest-xdist workers.

Under `make test` the suite runs in several worker processes (pytest-xdist), and a worker's memory ends with it:
which backends really ran, or the axe findings of the pages it checked, would reach neither the closing summary
nor the report file. A worker hands what it gathered to the controlling process when it finishes
(``workeroutput``), the controller merges the workers' parts, and it alone writes the files. In a run without
workers the one process is both.

- ``gathered(config, name)``: a dict merged across workers by key, e.g. the backends that ran;
- ``gathered_json_file(config, path)``: a dict written to path as JSON once the whole run ends (if not empty).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WORKER_OUTPUT_KEY = "medsight_session_report"


def _report(config: pytest.Config) -> dict[str, dict[str, dict]]:
    if not hasattr(config, "_medsight_session_report"):
        config._medsight_session_report = {"sections": {}, "files": {}}
    return config._medsight_session_report


def gathered(config: pytest.Config, name: str) -> dict:
    return _report(config)["sections"].setdefault(name, {})


def gathered_json_file(config: pytest.Config, path: Path) -> dict:
    return _report(config)["files"].setdefault(str(path), {})


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """On the controller: merge what a finished worker gathered (a worker that crashed hands nothing)."""
    part = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY, {})
    report = _report(node.config)
    for kind in ("sections", "files"):
        for name, entries in part.get(kind, {}).items():
            report[kind].setdefault(name, {}).update(entries)


@pytest.hookimpl(trylast=True)  # after pytest's own, which tears down the session fixtures that may still record
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _is_worker(config):
        config.workeroutput[WORKER_OUTPUT_KEY] = _report(config)
        return
    for path, content in _report(config)["files"].items():
        if content:
            Path(path).write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
