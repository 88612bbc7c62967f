"""services.memory_limits: limits' in-process store counts and expires as before, without a thread per count."""

from __future__ import annotations

import threading

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

import services.memory_limits
from services.memory_limits import SCHEME, SweptMemoryStorage


def test_the_scheme_gives_the_swept_store_and_it_limits(monkeypatch):
    store = storage_from_string(f"{SCHEME}://")
    assert isinstance(store, SweptMemoryStorage)
    started: list[threading.Thread] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread), real_start(thread)))
    limiter, limit = FixedWindowRateLimiter(store), parse("3 per minute")
    assert [limiter.hit(limit, "account") for _ in range(4)] == [True, True, True, False]
    assert started == []


def test_expired_counts_are_swept_on_a_later_count(monkeypatch):
    store = SweptMemoryStorage()
    store.incr("old", expiry=1)
    clock = services.memory_limits.time.monotonic()
    monkeypatch.setattr(services.memory_limits.time, "monotonic", lambda: clock + 10)
    store.expirations["old"] = 0  # its window is over
    store.incr("new", expiry=60)
    assert "old" not in store.storage and store.get("new") == 1
