"""services.token_cache: entries live while their epoch is current, and the epoch is shared where it must be."""

from __future__ import annotations

import os
import uuid

import pytest

from services.token_cache import EPOCH_KEY, FileEpoch, RedisEpoch, TokenCache

REDIS_URL = os.environ.get("MEDSIGHT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def test_file_epoch_is_shared_by_every_process_that_opens_the_file(tmp_path):
    one, other = FileEpoch(tmp_path / "epoch"), FileEpoch(tmp_path / "epoch")
    assert one.current() == other.current() == 0
    other.bump()
    assert one.current() == other.current() != 0
    before = one.current()
    one.bump()
    assert other.current() not in (0, before)


def test_an_entry_of_an_older_epoch_is_not_used(tmp_path):
    worker, other_worker = (TokenCache(FileEpoch(tmp_path / "epoch"), seconds=30) for _ in range(2))
    epoch = worker.epoch()
    worker.put("hash", "lookup", epoch)
    assert worker.get("hash", worker.epoch()) == "lookup"
    other_worker.invalidate()
    assert worker.get("hash", worker.epoch()) is None


def test_a_lookup_read_before_a_change_is_not_kept_past_it(tmp_path):
    cache = TokenCache(FileEpoch(tmp_path / "epoch"), seconds=30)
    epoch = cache.epoch()  # a request reads the epoch, then the database ...
    cache.invalidate()  # ... while another commits a revocation
    cache.put("hash", "lookup from before the revocation", epoch)
    assert cache.get("hash", cache.epoch()) is None


def test_zero_seconds_turns_the_cache_off(tmp_path):
    cache = TokenCache(FileEpoch(tmp_path / "epoch"), seconds=0)
    assert cache.epoch() is None
    cache.put("hash", "lookup", cache.epoch())
    assert cache.get("hash", cache.epoch()) is None


def test_redis_epoch_is_shared_by_every_node():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"needs Redis at {REDIS_URL} ({exc})", pytrace=False)
        pytest.skip(f"needs Redis at {REDIS_URL} ({exc})")
    client.delete(EPOCH_KEY)
    try:
        node_a, node_b = RedisEpoch(REDIS_URL), RedisEpoch(REDIS_URL)
        assert node_a.current() == node_b.current() == 0
        node_a.bump()
        assert node_b.current() == node_a.current() != 0
    finally:
        client.delete(EPOCH_KEY)


def test_an_unreachable_redis_reads_as_no_epoch():
    # A port nothing listens on: every lookup goes to the database, nothing is cached.
    cache = TokenCache(RedisEpoch(f"redis://127.0.0.1:1/{uuid.uuid4().int % 16}"), seconds=30)
    assert cache.epoch() is None
    cache.invalidate()  # logged, not raised
