"""utils.archives: names as labels only, and every limit checked before an entry is used."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.support.jobs import submit, zip_of
from utils.archives import ArchiveLimits, normalised_name, read_files, read_zip
from utils.errors import ArchiveTooLarge, InvalidArchive

LIMITS = ArchiveLimits(max_entries=10, max_uncompressed_bytes=10_000, max_ratio=100, max_entry_bytes=5_000)


@pytest.mark.parametrize(
    ("raw", "name"),
    [("a/b.jpg", "a/b.jpg"), ("./a//b.jpg", "a/b.jpg"), ("a\\b.jpg", "a/b.jpg"), ("x..y.png", "x..y.png")],
)
def test_names_are_normalised(raw, name):
    assert normalised_name(raw) == name


@pytest.mark.parametrize("raw", ["../x.jpg", "a/../../x.jpg", "/etc/x.jpg", "C:/x.jpg", "a\\..\\x.jpg", "a\x00.jpg"])
def test_names_that_escape_refuse_the_archive(raw):
    with pytest.raises(InvalidArchive) as refused:
        normalised_name(raw)
    assert refused.value.details == {"reason": "unsafe_entry_name"}


def test_the_declared_total_is_capped_before_anything_is_read():
    archive = zip_of([("a.bmp", b"1" * 6_000), ("b.bmp", b"2" * 4_500)], compression=zipfile.ZIP_STORED)
    with pytest.raises(ArchiveTooLarge) as refused:
        next(read_zip(io.BytesIO(archive), LIMITS))
    assert refused.value.details["reason"] == "uncompressed_size"


def test_an_oversized_entry_is_a_failed_item_and_directories_are_skipped():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("folder/", b"")
        archive.writestr("__MACOSX/._a.jpg", b"fork")
        archive.writestr("big.png", b"\x89PNG" + bytes(5_000))
        archive.writestr("small.jpg", b"\xff\xd8\xff")
    entries = list(read_zip(io.BytesIO(buffer.getvalue()), LIMITS))
    assert [(e.name, e.error) for e in entries] == [("big.png", "payload_too_large"), ("small.jpg", None)]


def test_an_entry_that_holds_more_than_its_declared_size_is_never_inflated_past_it():
    archive = bytearray(zip_of([("a.bmp", b"A" * 3_000)], compression=zipfile.ZIP_STORED))
    # Understate the size in the local header and the central directory: 3000 -> 100 bytes.
    declared = (3000).to_bytes(4, "little")
    archive = archive.replace(declared * 2, declared + (100).to_bytes(4, "little"))
    entries = list(read_zip(io.BytesIO(bytes(archive)), LIMITS))
    # Read no further than declared; the checksum then fails, and only this entry is refused.
    assert [(e.name, e.data, e.error) for e in entries] == [("a.bmp", None, "unreadable_entry")]


def test_several_files_keep_their_base_names_and_refuse_a_zip_among_them():
    files = [("C:\\scans\\one.jpg", io.BytesIO(b"1")), (None, io.BytesIO(b"2"))]
    assert [e.name for e in read_files(files, LIMITS)] == ["one.jpg", "file-2"]
    with pytest.raises(InvalidArchive):
        list(read_files([("a.jpg", io.BytesIO(b"1")), ("b.zip", io.BytesIO(zip_of([("c", b"")])))], LIMITS))


def test_an_archive_over_the_size_limit_is_413_before_it_is_read(build_app):
    app = build_app(JOB_MAX_ARCHIVE_MB="1")
    client = app.test_client()
    credentials = {"email": "big@example.org", "password": "correct-horse-42"}
    client.post("/api/v1/auth/register", json=credentials)
    token = client.post("/api/v1/auth/login", json=credentials).get_json()["access_token"]
    response = submit(client, {"Authorization": f"Bearer {token}"}, bytes(2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "archive_too_large"
