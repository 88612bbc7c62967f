"""The README's curl walkthroughs, run as written against a live development server.

The server is `flask --app app run -p <free port>` on a fresh instance folder (the embedded SQLite
default, as `make run` gives a new user). The shell blocks of the walkthrough sections are joined
into one script, only the address changed, and run with bash from a folder that has the repository's
tests/ (the fixture images the upload names); what they print must be what the README says.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from config import PROJECT_ROOT
from tests.support.servers import wait_until_answering

pytestmark = pytest.mark.slow

README = PROJECT_ROOT / "README.md"
README_ADDRESS = "http://127.0.0.1:5000"
WALKTHROUGH_SECTIONS = (
    "### Walkthrough with curl",
    "## Predictions",
    "## Clients of the original apps",
    "## Your own data",
)
# Settings of this machine or of CI that would take the server off the embedded default.
NOT_FOR_A_NEW_USER = (
    "MEDSIGHT_ENV",
    "DATABASE_URL",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "REDIS_URL",
    "STORAGE_LOCAL_ROOT",
    "PROMETHEUS_MULTIPROC_DIR",
    "ANONYMOUS_PREDICT",
    "SEED_PREDICT_SHAPE",
)


def shell_blocks(section_title: str) -> list[str]:
    """The ```sh blocks of one README section (up to the next heading of the same or a higher level)."""
    level = len(section_title.split(" ")[0])
    blocks: list[str] = []
    inside, fence = False, None
    for line in README.read_text("utf-8").splitlines():
        if fence is None and line.startswith("#"):
            heading_level = len(line.split(" ")[0])
            if line == section_title:
                inside = True
                continue
            if inside and set(line.split(" ")[0]) == {"#"} and heading_level <= level:
                break
        if not inside:
            continue
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
                if fence == "sh":
                    blocks.append("")
            else:
                fence = None
        elif fence == "sh":
            blocks[-1] += line + "\n"
    return blocks


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dev_server(tmp_path):
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if name not in NOT_FOR_A_NEW_USER}
    env["MEDSIGHT_INSTANCE_PATH"] = str(tmp_path / "instance")
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run", "-p", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(process, f"{base}/ready", tmp_path / "server.log", name="the development server")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _checkout_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_the_walkthroughs_run_as_written(dev_server, tmp_path):
    blocks = [block for title in WALKTHROUGH_SECTIONS for block in shell_blocks(title)]
    script = "\n".join(blocks)
    # The address is set once (BASE=...) and every command uses $BASE.
    assert script.count(README_ADDRESS) == 1 and f"BASE={README_ADDRESS}" in script and "$ID" in script
    assert "127.0.0.1" not in script.replace(f"BASE={README_ADDRESS}", "")
    workdir = tmp_path / "clone"
    workdir.mkdir()
    (workdir / "tests").symlink_to(PROJECT_ROOT / "tests")  # the upload names tests/fixtures/images/...
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    checkout_before = _checkout_status()
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(README_ADDRESS, dev_server)],
        cwd=workdir,
        env={**os.environ, "TMPDIR": str(temporary)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert '"email":"ada@example.org"' in out.replace(" ", "")
    assert out.count("\n204\n") + out.startswith("204\n") == 2  # the logout and the account deletion
    assert '"code":"token_revoked"' in out.replace(" ", "")  # the logged-out access token
    assert '"total":1' in out.replace(" ", "")  # the history holds the upload
    assert '"class_name":"Pneumonia"' in out.replace(" ", "")  # POST /predict, the old apps' shape
    # Downloads land in the walkthrough's temporary folder; the folder it runs in and the checkout stay as they were.
    assert [path.name for path in workdir.iterdir()] == ["tests"]
    assert _checkout_status() == checkout_before
    (downloads,) = temporary.iterdir()
    assert (downloads / "heatmap.png").read_bytes().startswith(b"\x89PNG")
    names = zipfile.ZipFile(downloads / "medsight-export.zip").namelist()
    assert "account.json" in names and any(n.startswith("photos/") for n in names)
    assert out.rstrip().endswith("}") and '"code":"token_invalid"' in out.replace(" ", "").splitlines()[-1]


def test_the_readme_names_no_path_outside_the_repository_in_its_walkthroughs():
    for title in WALKTHROUGH_SECTIONS:
        for block in shell_blocks(title):
            assert "../shared" not in block, title


def test_every_file_the_readme_uploads_is_committed():
    text = README.read_text("utf-8")
    for path in re.findall(r"file=@(\S+)", text):
        assert (PROJECT_ROOT / path).is_file(), path
    assert Path(PROJECT_ROOT / "docs" / "deployment.md").is_file()
