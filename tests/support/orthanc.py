"""Pytest plugin: a real PACS (Debian's Orthanc with its DICOMweb plugin) on free local ports, for the session.

Use it with ``pytest_plugins = ["tests.support.orthanc"]``; then ask for ``orthanc`` (the server: its
DICOMweb root and the credentials it takes). It runs from its own storage folder and a configuration
written here (no system service, no DICOM port, HTTP on 127.0.0.1 only, a user and password
required), and is stopped when the session ends. Without the binary or the plugin the tests that
need it are skipped, or failed where MEDSIGHT_REQUIRE_PACS=1 (CI sets it; .ci/run installs
``orthanc orthanc-dicomweb``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REQUIRE_PACS_VARIABLE = "MEDSIGHT_REQUIRE_PACS"
# Where Debian's orthanc-dicomweb puts the plugin (the versioned file is under /usr/lib/orthanc).
PLUGIN_FOLDERS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
PLUGIN_GLOB = "libOrthancDicomWeb.so*"
USERNAME = "medsight"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Orthanc:
    """A running Orthanc: its REST root, its DICOMweb root and the credentials both take."""

    url: str
    dicomweb_url: str
    username: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return self.username, self.password

    @property
    def settings(self) -> dict[str, str]:
        """The MedSight settings that point at this PACS."""
        return {
            "DICOMWEB_URL": self.dicomweb_url,
            "DICOMWEB_USERNAME": self.username,
            "DICOMWEB_PASSWORD": self.password,
        }


def _missing(message: str) -> None:
    if os.environ.get(REQUIRE_PACS_VARIABLE, "").strip() not in ("", "0"):
        pytest.fail(f"{message}, and {REQUIRE_PACS_VARIABLE} is set", pytrace=False)
    pytest.skip(message)


def dicomweb_plugin() -> Path | None:
    for folder in PLUGIN_FOLDERS:
        found = sorted(folder.glob(PLUGIN_GLOB)) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configuration(storage: Path, plugin: Path, http_port: int, dicom_port: int, password: str) -> dict:
    """Orthanc's JSON configuration: its own storage, HTTP on loopback only, DICOMweb at /dicom-web/."""
    return {
        "Name": "MedSight test PACS",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": http_port,
        "DicomServerEnabled": False,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USERNAME: password},
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }


def _wait(process: subprocess.Popen, url: str, auth: tuple[str, str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Orthanc exited: {log.read_text()[-3000:]}", pytrace=False)
        try:
            # The DICOMweb root answers only once the plugin is loaded.
            if requests.get(f"{url}/dicom-web/studies", auth=auth, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"Orthanc not ready after {START_TIMEOUT_S} s: {log.read_text()[-3000:]}", pytrace=False)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Iterator[Orthanc]:
    """Start Orthanc with the DICOMweb plugin on free ports; stop it when the session ends."""
    binary = shutil.which("Orthanc")
    plugin = dicomweb_plugin()
    if binary is None or plugin is None:
        _missing("Orthanc and its DICOMweb plugin are not installed (apt-get install orthanc orthanc-dicomweb)")
    folder = tmp_path_factory.mktemp("orthanc")
    password = os.urandom(12).hex()
    http_port = free_port()
    config = folder / "orthanc.json"
    config.write_text(json.dumps(configuration(folder / "storage", plugin, http_port, free_port(), password)))
    log = folder / "orthanc.log"
    with log.open("wb") as output:
        process = subprocess.Popen([binary, str(config)], stdout=output, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait(process, url, (USERNAME, password), log)
        yield Orthanc(url=url, dicomweb_url=f"{url}/dicom-web", username=USERNAME, password=password)
    finally:
        _stop(process)
