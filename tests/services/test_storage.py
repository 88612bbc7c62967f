"""The storage contract, proven against both backends: a local folder and S3 (moto's server over HTTP)."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from services.s3_storage import EXPECT_CONTINUE_MIN_BYTES, S3Storage
from services.storage import (
    InvalidStorageKey,
    LocalFolderStorage,
    ObjectNotFound,
    Storage,
    StoredObject,
    create_storage,
)
from utils.errors import NotFound, StorageUnavailable

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"not really a png, storage does not care" * 10


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return create_storage({"STORAGE_LOCAL_ROOT": str(tmp_path / "photos")})
    return create_storage(request.getfixturevalue("s3_bucket"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_factory_picks_backend_from_config(tmp_path, s3_bucket):
    assert isinstance(create_storage({"STORAGE_LOCAL_ROOT": str(tmp_path)}), LocalFolderStorage)
    assert isinstance(create_storage({**s3_bucket, "STORAGE_LOCAL_ROOT": str(tmp_path)}), S3Storage)
    with pytest.raises(ValueError, match="STORAGE_LOCAL_ROOT"):
        create_storage({})


def test_put_then_get_returns_same_bytes_and_content_type(storage):
    key = storage.new_key("photos")
    storage.put_object(key, PNG_BYTES, "image/png")
    stored = storage.get_object(key)
    assert stored.data == PNG_BYTES
    assert stored.content_type == "image/png"


def test_put_replaces_existing_object(storage):
    key = storage.new_key("photos")
    storage.put_object(key, b"first", "text/plain")
    storage.put_object(key, b"second", "image/jpeg")
    assert storage.get_object(key) == StoredObject(b"second", "image/jpeg")


def test_deleted_object_is_gone(storage):
    key = storage.new_key("photos")
    storage.put_object(key, PNG_BYTES, "image/png")
    storage.delete_object(key)
    with pytest.raises(ObjectNotFound):
        storage.get_object(key)


def test_delete_is_idempotent(storage):
    key, neighbour = storage.new_key("photos"), storage.new_key("photos")
    storage.put_object(neighbour, PNG_BYTES, "image/png")
    storage.delete_object(key)  # never stored
    storage.put_object(key, PNG_BYTES, "image/png")
    storage.delete_object(key)
    storage.delete_object(key)
    with pytest.raises(ObjectNotFound):
        storage.get_object(key)
    assert storage.get_object(neighbour) == StoredObject(PNG_BYTES, "image/png")


def test_missing_key_is_not_found_404(storage):
    with pytest.raises(NotFound) as caught:
        storage.get_object(storage.new_key("photos"))
    assert isinstance(caught.value, ObjectNotFound)
    assert (caught.value.status, caught.value.code) == (404, "not_found")


def test_keys_are_unique_unguessable_and_prefixed(storage):
    keys = {storage.new_key("heatmaps") for _ in range(1000)}
    assert len(keys) == 1000
    for key in list(keys)[:20]:
        prefix, year, month, day, token = key.split("/")
        assert prefix == "heatmaps" and len(year) == 4 and len(month) == len(day) == 2
        assert len(token) >= 32  # 24 random bytes, url-safe base64


@pytest.mark.parametrize(
    "bad_key", ["../x", "/etc/passwd", "photos/../../x", "a//b", ".hidden", "a/./b", "", "a\\b", "a b"]
)
def test_malformed_keys_are_refused_by_every_backend(storage, bad_key):
    for operation in (
        lambda: storage.put_object(bad_key, b"x", "text/plain"),
        lambda: storage.get_object(bad_key),
        lambda: storage.delete_object(bad_key),
        lambda: storage.url_for(bad_key),
    ):
        with pytest.raises(InvalidStorageKey):
            operation()


def test_check_passes_when_backend_is_usable_and_changes_nothing(storage):
    key = storage.new_key("photos")
    storage.put_object(key, PNG_BYTES, "image/png")
    storage.check()
    assert storage.get_object(key) == StoredObject(PNG_BYTES, "image/png")
    if isinstance(storage, LocalFolderStorage):
        assert not list(storage.root.rglob(".ready-*")), "the local probe file must not outlive the check"


def test_an_opened_object_streams_its_bytes_type_and_size(storage):
    key = storage.new_key("photos")
    big = PNG_BYTES * 400  # over one S3 chunk
    storage.put_object(key, big, "image/png")

    stream = storage.open_object(key)

    assert (stream.content_type, stream.length) == ("image/png", len(big))
    assert b"".join(stream.chunks) == big
    with pytest.raises(ObjectNotFound):
        storage.open_object(storage.new_key("photos"))


def test_s3_url_downloads_the_object(s3_bucket):
    storage = create_storage(s3_bucket)
    key = storage.new_key("photos")
    storage.put_object(key, PNG_BYTES, "image/png")
    url = storage.url_for(key, expires_in=60)
    assert "Signature=" in url or "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == PNG_BYTES
        assert response.headers["Content-Type"] == "image/png"


def test_s3_sends_a_photo_with_its_headers_and_asks_to_continue_only_for_a_large_body(s3_bucket):
    storage = create_storage(s3_bucket)
    sent: dict[int, bytes | None] = {}

    def record(request, **_kwargs):
        sent[int(request.headers["Content-Length"])] = request.headers.get("Expect")

    storage._client.meta.events.register_last("before-send.s3.PutObject", record)
    small, large = b"p" * 50_000, b"p" * EXPECT_CONTINUE_MIN_BYTES
    storage.put_object("photos/small", small, "image/jpeg")
    storage.put_object("photos/large", large, "image/jpeg")
    assert sent == {len(small): None, len(large): b"100-continue"}
    assert storage.get_object("photos/small").data == small and storage.get_object("photos/large").data == large


def test_local_url_is_none_so_the_api_serves_it(tmp_path):
    storage = LocalFolderStorage(tmp_path)
    key = storage.new_key("photos")
    storage.put_object(key, PNG_BYTES, "image/png")
    assert storage.url_for(key) is None


def test_local_writes_under_root_and_leaves_no_temp_files(tmp_path):
    storage = LocalFolderStorage(tmp_path / "root")
    key = storage.new_key("photos")
    storage.put_object(key, PNG_BYTES, "image/png")
    assert (tmp_path / "root" / key).read_bytes() == PNG_BYTES
    leftovers = [p for p in (tmp_path / "root").rglob(".tmp-*")]
    assert leftovers == []


def test_local_refuses_symlink_escaping_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "photos").symlink_to(outside, target_is_directory=True)
    (root / "leak").symlink_to(outside / "secret")
    storage = LocalFolderStorage(root)
    for key in ("photos/secret", "leak"):
        with pytest.raises(InvalidStorageKey, match="outside the storage root"):
            storage.get_object(key)
    with pytest.raises(InvalidStorageKey):
        storage.put_object("photos/new", b"x", "text/plain")
    with pytest.raises(InvalidStorageKey):
        storage.delete_object("leak")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_local_unwritable_root_is_storage_unavailable(tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_bytes(b"")
    storage = LocalFolderStorage(blocker / "photos")
    with pytest.raises(StorageUnavailable):
        storage.check()
    with pytest.raises(StorageUnavailable) as caught:
        storage.put_object("photos/x", b"x", "text/plain")
    assert (caught.value.status, caught.value.code) == (503, "storage_unavailable")


def test_s3_missing_bucket_is_storage_unavailable(s3_bucket):
    storage = create_storage({**s3_bucket, "S3_BUCKET": "medsight-no-such-bucket"})
    with pytest.raises(StorageUnavailable):
        storage.check()
    with pytest.raises(StorageUnavailable):
        storage.put_object("photos/x", b"x", "text/plain")


def test_s3_outage_fails_fast_with_storage_unavailable(aws_test_credentials):
    storage = create_storage(
        {"S3_BUCKET": "any", "S3_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}", "S3_REGION": "us-east-1"}
    )
    for operation in (
        storage.check,
        lambda: storage.put_object("photos/x", b"x", "text/plain"),
        lambda: storage.get_object("photos/x"),
        lambda: storage.delete_object("photos/x"),
    ):
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as caught:
            operation()
        assert time.monotonic() - started < 5
        assert caught.value.code == "storage_unavailable"


def test_s3_endpoint_that_stalls_times_out_as_storage_unavailable(aws_test_credentials):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections (the kernel does), never answers
        storage = S3Storage(
            "any",
            endpoint_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
            region="us-east-1",
            read_timeout=0.3,
        )
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as caught:
            storage.check()
    assert time.monotonic() - started < 3
    assert caught.value.details["reason"] == "ReadTimeoutError"


def test_after_a_stall_s3_calls_fail_at_once_for_a_while(aws_test_credentials):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        storage = S3Storage(
            "any", endpoint_url=f"http://127.0.0.1:{listener.getsockname()[1]}", region="us-east-1", read_timeout=0.3
        )
        with pytest.raises(StorageUnavailable):
            storage.put_object("photos/x", b"x", "text/plain")
        started = time.monotonic()
        for operation in (lambda: storage.delete_object("photos/x"), storage.check):
            with pytest.raises(StorageUnavailable) as caught:
                operation()
            assert caught.value.details["reason"] == "unreachable_recently"
    assert time.monotonic() - started < 0.2
