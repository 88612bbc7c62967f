"""Object storage for photos and heatmaps: one interface, an S3 backend and a local-folder twin."""

from __future__ import annotations

import abc
import contextlib
import datetime
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from utils.errors import NotFound, StorageUnavailable

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_LENGTH = 1024
# Letters, digits and a few punctuation marks, segments joined by "/"; no segment may start
# with "." so keys can never be "..", hidden files, or collide with our temp/metadata files.
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.=]*$")
_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
# Temporary files of the local backend: a write in progress (renamed into place when complete), a readiness probe.
_TEMP_PREFIX_WRITE = ".tmp-"
_TEMP_PREFIX_READY = ".ready-"
_TEMP_PREFIXES = (_TEMP_PREFIX_WRITE, _TEMP_PREFIX_READY)
# After a call that could not reach S3, how long every call fails at once instead of waiting again.
S3_COOLDOWN_SECONDS = 10.0


class InvalidStorageKey(ValueError):
    """A key that is not one of ours: empty, absolute, with '..' or odd characters, or escaping the root."""


class ObjectNotFound(NotFound):
    """No object is stored under the key."""


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    content_type: str


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
    def list_objects(self) -> Iterator[ListedObject]:
        """Everything stored, and every unfinished write, with when it was last written (for the sweep)."""

    @abc.abstractmethod
    def delete_partial(self, listed: ListedObject) -> None:
        """Remove an unfinished write that list_objects reported (partial=True)."""

    def new_key(self, prefix: str) -> str:
        """A fresh unguessable key under prefix, partitioned by UTC date."""
        today = datetime.datetime.now(datetime.UTC)
        return validate_key(f"{prefix.strip('/')}/{today:%Y/%m/%d}/{secrets.token_urlsafe(24)}")


class S3Storage(Storage):
    """Objects in one S3 (or S3-compatible: MinIO, moto) bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        connect_timeout: float = 2,
        read_timeout: float = 2.5,
        total_attempts: int = 2,
        cooldown: float = S3_COOLDOWN_SECONDS,
    ) -> None:
        self.bucket = bucket
        # Short timeouts and one retry: an outage must become a quick 503, not a hung worker.
        # A refused connection fails in milliseconds; an endpoint that accepts and then stalls
        # costs at most total_attempts * read_timeout (5 s by default, plus the retry's pause)
        # for the first call, and then nothing: for `cooldown` seconds after a call that could
        # not reach the endpoint, every call fails at once (a circuit breaker). So a whole
        # request, however many objects it stores or deletes again, waits on a stalled S3 for
        # one call only, well within 10 s.
        self.cooldown = cooldown
        self._unreachable_until = 0.0
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": total_attempts, "mode": "standard"},
            signature_version="s3v4",
            # Custom endpoints (MinIO, moto) rarely resolve bucket subdomains.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )

    @contextlib.contextmanager
    def _translated_errors(self, key: str | None = None) -> Iterator[None]:
        if time.monotonic() < self._unreachable_until:
            raise StorageUnavailable(details={"backend": "s3", "reason": "unreachable_recently"})
        try:
            yield
        except (EndpointUnreachable, HTTPClientError) as exc:
            # Timed out or could not connect: the endpoint is away; do not wait on it again for a while.
            self._unreachable_until = time.monotonic() + self.cooldown
            raise StorageUnavailable(details={"backend": "s3", "reason": type(exc).__name__}) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if key is not None and code in _MISSING_KEY_CODES:
                raise ObjectNotFound("The stored object was not found.") from exc
            raise StorageUnavailable(
                details={"backend": "s3", "reason": code or "client_error"},
            ) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(
                details={"backend": "s3", "reason": type(exc).__name__},
            ) from exc

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        validate_key(key)
        with self._translated_errors():
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_object(self, key: str) -> StoredObject:
        validate_key(key)
        with self._translated_errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        return StoredObject(data=data, content_type=response.get("ContentType") or DEFAULT_CONTENT_TYPE)

    def delete_object(self, key: str) -> None:
        validate_key(key)
        with self._translated_errors():
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def url_for(self, key: str, expires_in: int = 300) -> str | None:
        validate_key(key)
        with self._translated_errors():
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(expires_in)
            )

    def check(self) -> None:
        with self._translated_errors():
            self._client.head_bucket(Bucket=self.bucket)

    def list_objects(self) -> Iterator[ListedObject]:
        with self._translated_errors():
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for item in page.get("Contents", []):
                    yield ListedObject(key=item["Key"], modified_at=item["LastModified"])
            for page in self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    yield ListedObject(
                        key=upload["Key"], modified_at=upload["Initiated"], partial=True, upload_id=upload["UploadId"]
                    )

    def delete_partial(self, listed: ListedObject) -> None:
        if listed.upload_id is None:
            raise ValueError(f"{listed.key!r} is not an unfinished upload")
        with self._translated_errors():
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=listed.key, UploadId=listed.upload_id)


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
    def _write_atomically(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX_WRITE)
        try:
            with os.fdopen(fd, "wb") as temp_file:
                temp_file.write(data)
                temp_file.flush()
                os.fsync(temp_file.fileno())
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        path, type_path = self._path_for(key), self._content_type_path(key)
        with self._translated_errors():
            # Content type first: the data file appearing is what makes the object exist.
            self._write_atomically(type_path, content_type.encode("utf-8"))
            self._write_atomically(path, bytes(data))

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

    def list_objects(self) -> Iterator[ListedObject]:
        types_root = self.root / self._CONTENT_TYPES_DIR
        with self._translated_errors():
            if not self.root.is_dir():
                return
            for path in sorted(self.root.rglob("*")):
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
