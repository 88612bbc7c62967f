"""The field's own checkers of DICOM objects: dciodvfy (dicom3tools) and dsrdump (DCMTK).

Where they are not installed the tests that need them are skipped, or failed where
MEDSIGHT_REQUIRE_DICOM_TOOLS=1 (CI sets it, and .ci/run installs both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REQUIRE_DICOM_TOOLS_VARIABLE = "MEDSIGHT_REQUIRE_DICOM_TOOLS"


def dicom_tool(name: str) -> str:
    """The path of a Debian DICOM tool: skip without it, or fail where the tools are required."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install dicom3tools dcmtk)"
        if os.environ.get(REQUIRE_DICOM_TOOLS_VARIABLE, "").strip() not in ("", "0"):
            pytest.fail(f"{message}, and {REQUIRE_DICOM_TOOLS_VARIABLE} is set")
        pytest.skip(message)
    return path


def dciodvfy_errors(path: Path) -> list[str]:
    """What dciodvfy calls an error in the file at path against its IOD (warnings are left out)."""
    run = subprocess.run([dicom_tool("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def dsrdump(path: Path) -> str:
    """DCMTK's reading of the SR at path; fails the test if it cannot read it."""
    run = subprocess.run([dicom_tool("dsrdump"), str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout
