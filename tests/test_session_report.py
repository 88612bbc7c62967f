"""The session report gathers across pytest-xdist workers: what each worker recorded reaches the one summary and
the one report file, as `make test` runs the suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from pathlib import Path

import pytest

from tests.support.session_report import gathered, gathered_json_file


@pytest.fixture
def record(pytestconfig):
    def record(name):
        gathered(pytestconfig, "ran")[name] = True
        gathered_json_file(pytestconfig, Path("report.json"))[name] = {"pid": __import__("os").getpid()}

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line("ran: " + ", ".join(sorted(gathered(config, "ran"))))
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_what_each_worker_gathered_reaches_the_summary_and_the_report_file(pytester, monkeypatch, workers):
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_first="def test_first(record):\n    record('first')\n",
        test_second="def test_second(record):\n    record('second')\n",
    )

    result = pytester.runpytest_subprocess(
        "-p", "tests.support.session_report", "-p", "no:cacheprovider", "-n", workers, "--dist", "loadfile"
    )

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["ran: first, second"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert sorted(report) == ["first", "second"]
    if workers == "2":
        assert report["first"]["pid"] != report["second"]["pid"], "both files ran in one worker: nothing was merged"
