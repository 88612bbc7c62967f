"""Archives of images for batch jobs: a zip (or several uploaded files) read as a list of named entries.

Nothing here writes to disk, and an entry's name is only ever a label: it is normalised (forward slashes,
no "./") and an archive whose names try to climb out ("..", absolute paths, drive letters) or carry
control characters is refused whole. Limits are checked on the central directory before any entry is
read (count, declared sizes, compression ratio), and again on the bytes as they are inflated, so a
directory that lies about sizes cannot slip a bomb through. An entry that is itself a zip refuses the
archive; an entry that is merely not an image is left to the scorer, which fails that item alone.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from utils.errors import ArchiveTooLarge, InvalidArchive

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
# Below this declared size a high compression ratio is harmless (a small, flat image).
RATIO_CHECK_MIN_BYTES = 1024 * 1024
NAME_MAX_LENGTH = 512
# Folders macOS's archiver adds beside the files (resource forks): never images.
_IGNORED_PREFIXES = ("__MACOSX/",)
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_READ_CHUNK = 1024 * 1024

# Item error codes for entries refused on arrival (the scorer's codes are the API's error codes).
ENTRY_TOO_LARGE = "payload_too_large"
ENTRY_ENCRYPTED = "encrypted_entry"
ENTRY_UNREADABLE = "unreadable_entry"


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_uncompressed_bytes: int
    max_ratio: int
    max_entry_bytes: int  # one image, as for a single upload


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of the archive: its bytes, or the code that says why it was refused on arrival."""

    name: str
    data: bytes | None
    error: str | None = None


def looks_like_zip(head: bytes) -> bool:
    return head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC))


def normalised_name(raw: str) -> str:
    """The entry's name as a label: forward slashes, no "./"; InvalidArchive for names that try to escape."""
    name = raw.replace("\\", "/")
    if _CONTROL.search(name) or name.startswith("/") or _DRIVE.match(name):
        raise InvalidArchive("An entry's name is absolute or holds control characters.", details=_unsafe())
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidArchive("An entry's name climbs out of the archive ('..').", details=_unsafe())
    name = "/".join(parts)
    # The end of a long path says most about the file.
    return name[-NAME_MAX_LENGTH:]


def _unsafe() -> dict:
    return {"reason": "unsafe_entry_name"}


def read_zip(archive: BinaryIO, limits: ArchiveLimits) -> Iterator[ArchiveEntry]:
    """The image entries of a zip, in archive order; the whole directory is checked before the first is read."""
    try:
        opened = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise InvalidArchive("The file is not a readable zip archive.", details={"reason": "not_a_zip"}) from exc
    with opened:
        members = _checked_members(opened, limits)
        for info, name in members:
            yield _read_member(opened, info, name, limits)


def _checked_members(opened: zipfile.ZipFile, limits: ArchiveLimits) -> list[tuple[zipfile.ZipInfo, str]]:
    infos = opened.infolist()
    if len(infos) > limits.max_entries * 2:  # directories and resource forks count too, up to a point
        raise _too_many(limits)
    members = []
    declared_total = 0
    for info in infos:
        if info.is_dir() or info.filename.replace("\\", "/").startswith(_IGNORED_PREFIXES):
            continue
        members.append((info, normalised_name(info.filename)))
        declared_total += info.file_size
        if info.file_size >= RATIO_CHECK_MIN_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise InvalidArchive(
                "An entry inflates far beyond its compressed size (a zip bomb?).",
                details={"reason": "compression_ratio", "max_ratio": limits.max_ratio},
            )
    if len(members) > limits.max_entries:
        raise _too_many(limits)
    if declared_total > limits.max_uncompressed_bytes:
        raise ArchiveTooLarge(
            "The archive's files add up to more than a job may hold.",
            details={"reason": "uncompressed_size", "limit_bytes": limits.max_uncompressed_bytes},
        )
    if not members:
        raise InvalidArchive("The archive holds no files.", details={"reason": "empty_archive"})
    return members


def _too_many(limits: ArchiveLimits) -> ArchiveTooLarge:
    return ArchiveTooLarge(
        f"The archive holds more than {limits.max_entries} files.",
        details={"reason": "too_many_entries", "limit": limits.max_entries},
    )


def _read_member(opened: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: ArchiveLimits) -> ArchiveEntry:
    if info.flag_bits & 0x1:
        return ArchiveEntry(name, None, ENTRY_ENCRYPTED)
    if info.file_size > limits.max_entry_bytes:
        return ArchiveEntry(name, None, ENTRY_TOO_LARGE)
    try:
        with opened.open(info) as member:
            data = _read_at_most(member, info.file_size + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError, RuntimeError):
        # A CRC mismatch, an unknown compression method, a damaged stream: this entry only.
        return ArchiveEntry(name, None, ENTRY_UNREADABLE)
    if len(data) > info.file_size:
        raise InvalidArchive(
            "An entry holds more than the archive's directory says (a zip bomb?).", details={"reason": "size_mismatch"}
        )
    _refuse_nested(data)
    return ArchiveEntry(name, data)


def _read_at_most(stream: BinaryIO, limit: int) -> bytes:
    chunks, total = [], 0
    while total < limit:
        chunk = stream.read(min(_READ_CHUNK, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _refuse_nested(data: bytes) -> None:
    if looks_like_zip(data[:4]):
        raise InvalidArchive(
            "The archive holds another archive; send the images themselves.", details={"reason": "nested_archive"}
        )


def read_files(files: list[tuple[str | None, BinaryIO]], limits: ArchiveLimits) -> Iterator[ArchiveEntry]:
    """Several uploaded files as entries, named by their file names (folders dropped)."""
    if len(files) > limits.max_entries:
        raise _too_many(limits)
    for number, (filename, stream) in enumerate(files, start=1):
        name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        name = _CONTROL.sub("", name)[-NAME_MAX_LENGTH:] or f"file-{number}"
        data = _read_at_most(stream, limits.max_entry_bytes + 1)
        if len(data) > limits.max_entry_bytes:
            yield ArchiveEntry(name, None, ENTRY_TOO_LARGE)
            continue
        _refuse_nested(data)
        yield ArchiveEntry(name, data)
