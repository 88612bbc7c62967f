"""Object storage for photos and heatmaps: one interface, its local-folder backend, and the factory.

The S3 backend is services.s3_storage, imported only where a bucket is configured (boto3 costs every
process about 10 MB and 0.1 s to import).
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from utils.errors import NotFound, StorageUnavailable

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_LENGTH = 1024
# Letters, digits and a few punctuation marks, segments joined by "/"; no segment may start
# with "." so keys can never be "..", hidden files, or collide with our temp/metadata files.
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.=]*$")
# Temporary files of the local backend: a write in progress (renamed into place when complete), a readiness probe.
_TEMP_PREFIX_WRITE = ".tmp-"
_TEMP_PREFIX_READY = ".ready-"
_TEMP_PREFIXES = (_TEMP_PREFIX_WRITE, _TEMP_PREFIX_READY)


class InvalidStorageKey(ValueError):
    """A key that is not one of ours: empty, absolute, with '..' or odd characters, or escaping the root."""


class ObjectNotFound(NotFound):
    """No object is stored under the key."""


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class ObjectStream:
    """An object to be sent on piece by piece: its bytes as chunks, its content type and its size in bytes."""

    chunks: Iterator[bytes]
    content_type: str
    length: int | None = None


@dataclass(frozen=True)
class ListedObject:
    """Something a backend holds, as its sweep sees it: an object by its key, or a write that never finished.

    partial: a temporary file a crash left behind (local), an orphaned content-type file whose object is
    gone (local), or a multipart upload never completed (S3); `key` then names where it is, and
    `upload_id` the S3 upload.
    """

    key: str
    modified_at: datetime.datetime
    partial: bool = False
    upload_id: str | None = None


def validate_key(key: str) -> str:
    """Return the key unchanged if it is a well-formed relative key, else raise InvalidStorageKey."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidStorageKey(f"invalid storage key {key!r}: must be 1-{MAX_KEY_LENGTH} characters")
    if not all(_KEY_SEGMENT.match(segment) for segment in key.split("/")):
        raise InvalidStorageKey(
            f"invalid storage key {key!r}: expected relative segments of letters, digits, '-', '_', "
            "'.', '=' joined by '/', none starting with '.' (no absolute paths, no '..')"
        )
    return key


class Storage(abc.ABC):
    """Where uploaded photos and generated heatmaps live, addressed by opaque keys."""

    @abc.abstractmethod
    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        """Store data under key, replacing any object already there."""

    @abc.abstractmethod
    def get_object(self, key: str) -> StoredObject:
        """Return the object under key; ObjectNotFound if there is none."""

    def open_object(self, key: str) -> ObjectStream:
        """The object under key as a stream; ObjectNotFound if there is none. This default reads it whole."""
        stored = self.get_object(key)
        return ObjectStream(iter((stored.data,)), stored.content_type, len(stored.data))

    @abc.abstractmethod
    def delete_object(self, key: str) -> None:
        """Remove the object under key; deleting a missing object is not an error."""

    @abc.abstractmethod
    def url_for(self, key: str, expires_in: int = 300) -> str | None:
        """A short-lived URL a client can GET directly, or None when the API must serve the object."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless the backend can be used right now."""

    @abc.abstractmethod
    def list_objects(self, prefix: str | None = None) -> Iterator[ListedObject]:
        """Everything stored under prefix (everything when None), unfinished writes included, with when it was
        last written (for the sweep)."""

    @abc.abstractmethod
    def delete_partial(self, listed: ListedObject) -> None:
        """Remove an unfinished write that list_objects reported (partial=True)."""

    def new_key(self, prefix: str) -> str:
        """A fresh unguessable key under prefix, partitioned by UTC date."""
        today = datetime.datetime.now(datetime.UTC)
        return validate_key(f"{prefix.strip('/')}/{today:%Y/%m/%d}/{secrets.token_urlsafe(24)}")


class LocalFolderStorage(Storage):
    """Objects as files under one root folder; content types kept in a hidden sibling tree."""

    _CONTENT_TYPES_DIR = ".content-types"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path_for(self, key: str, tree: Path | None = None) -> Path:
        validate_key(key)
        base = tree or self.root
        path = (base / key).resolve()
        # resolve() follows symlinks, so a link anywhere on the way out of the root is caught here.
        if not path.is_relative_to(base) or path == base:
            raise InvalidStorageKey(f"invalid storage key {key!r}: resolves outside the storage root")
        return path

    def _content_type_path(self, key: str) -> Path:
        return self._path_for(key, self.root / self._CONTENT_TYPES_DIR)

    @contextlib.contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StorageUnavailable(
                details={"backend": "local", "reason": exc.strerror or type(exc).__name__},
            ) from exc

    @staticmethod
    def _write_atomically(path: Path, data: bytes, *, sync: bool) -> None:
        """Write data to a temporary file beside path and rename it into place, so that a reader sees the whole
        object or none; sync: flush it to the disk after the rename (which the same flush then carries)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX_WRITE)
        try:
            with os.fdopen(fd, "wb") as temp_file:
                temp_file.write(data)
                temp_file.flush()
                os.replace(temp_name, path)
                if sync:
                    os.fsync(temp_file.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        """Durability: one fsync per object, of its data, after both renames and before this returns (so before
        the caller commits the row that names the object). On a journalling file system (ext4, XFS: the
        journal is committed in order, one transaction at a time) that flush also commits the two renames
        done before it. The content-type file is not flushed on its own: after a power cut in the seconds
        after an upload it may come back empty, and the object is then served as application/octet-stream.
        POSIX alone promises less: a rename is durable only once its folder is fsynced, two more flushes per
        object that this backend does not pay. Where every write must survive any file system, use S3.
        """
        path, type_path = self._path_for(key), self._content_type_path(key)
        with self._translated_errors():
            # Content type first: the data file appearing is what makes the object exist.
            self._write_atomically(type_path, content_type.encode("utf-8"), sync=False)
            self._write_atomically(path, bytes(data), sync=True)

    def get_object(self, key: str) -> StoredObject:
        path, type_path = self._path_for(key), self._content_type_path(key)
        with self._translated_errors():
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                raise ObjectNotFound("The stored object was not found.") from exc
            try:
                content_type = type_path.read_text("utf-8").strip() or DEFAULT_CONTENT_TYPE
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                content_type = DEFAULT_CONTENT_TYPE
        return StoredObject(data=data, content_type=content_type)

    def delete_object(self, key: str) -> None:
        path, type_path = self._path_for(key), self._content_type_path(key)
        with self._translated_errors():
            for file_path in (path, type_path):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    if not file_path.is_dir():
                        file_path.unlink()

    def url_for(self, key: str, expires_in: int = 300) -> str | None:
        self._path_for(key)
        return None

    def check(self) -> None:
        with self._translated_errors():
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root, prefix=_TEMP_PREFIX_READY):
                pass

    def list_objects(self, prefix: str | None = None) -> Iterator[ListedObject]:
        types_root = self.root / self._CONTENT_TYPES_DIR
        trees = [self.root] if prefix is None else [self._path_for(prefix), self._path_for(prefix, types_root)]
        with self._translated_errors():
            paths = sorted(path for tree in trees if tree.is_dir() for path in tree.rglob("*"))
            for path in paths:
                if path.is_symlink() or not path.is_file():
                    continue
                relative = path.relative_to(self.root).as_posix()
                modified = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
                if path.name.startswith(_TEMP_PREFIXES):
                    yield ListedObject(key=relative, modified_at=modified, partial=True)
                elif path.is_relative_to(types_root):
                    if not (self.root / path.relative_to(types_root)).exists():
                        yield ListedObject(key=relative, modified_at=modified, partial=True)
                else:
                    yield ListedObject(key=relative, modified_at=modified)

    def delete_partial(self, listed: ListedObject) -> None:
        path = (self.root / listed.key).resolve()
        if not path.is_relative_to(self.root) or not listed.partial:
            raise InvalidStorageKey(f"{listed.key!r} is not an unfinished write under the storage root")
        with self._translated_errors(), contextlib.suppress(FileNotFoundError):
            path.unlink()


def create_storage(config: Mapping) -> Storage:
    """Build the storage backend the configuration asks for: S3 when S3_BUCKET is set, else a local folder."""
    bucket = config.get("S3_BUCKET")
    if bucket:
        from services.s3_storage import S3Storage

        return S3Storage(
            bucket,
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            access_key_id=config.get("S3_ACCESS_KEY_ID"),
            secret_access_key=config.get("S3_SECRET_ACCESS_KEY"),
        )
    root = config.get("STORAGE_LOCAL_ROOT")
    if not root:
        raise ValueError("STORAGE_LOCAL_ROOT must be set when S3_BUCKET is not (photos need a home)")
    return LocalFolderStorage(root)
