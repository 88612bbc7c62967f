"""A short-lived in-process cache of personal access token lookups, emptied at once by any change that matters.

Every request with a personal access token would otherwise read its token row and its account's row
(two round trips). The cache keeps what such a lookup found, keyed by the token's hash, for a few
seconds (PAT_CACHE_SECONDS; 0 turns it off). It is only ever a copy: a token revoked, an account
disabled, deleted, demoted or given a new password must stop counting on the very next request, on
every worker process and every node. That is what the epoch is for:

- a value shared by everyone who serves requests: a key in Redis when REDIS_URL is set (every
  node), else an 8-byte file in the instance folder (every worker process of this node);
- read before the database is, and kept with the entry; an entry whose epoch is no longer the
  current one is not used;
- replaced by a fresh random value after every commit that changed an account or a token
  (managers.tokens watches the session for that), so that no entry read before the change survives
  it, and one read after it sees the committed change. Random rather than counted: a store that was
  emptied or restarted cannot come back to a value old entries carry.

Reading the epoch is one Redis GET (or one pread) per request instead of two SQL round trips. A store
that cannot be read makes every lookup a miss (to the database, as without the cache); one that
cannot be raised is logged, and the other nodes' entries then live at most PAT_CACHE_SECONDS.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EPOCH_KEY = "medsight:pat-cache-epoch"
EPOCH_FILE = "pat-cache-epoch"
MAX_ENTRIES = 10_000


class EpochStore:
    """Where the shared epoch lives. current() is None when it cannot be read."""

    def current(self) -> int | None:
        raise NotImplementedError

    def bump(self) -> None:
        raise NotImplementedError


def _fresh() -> int:
    return secrets.randbits(63) + 1  # never 0, which an absent or empty store reads as


class FileEpoch(EpochStore):
    """The epoch as 8 bytes of a file every worker process of this node opens: pread to read, pwrite to replace."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def current(self) -> int | None:
        try:
            raw = os.pread(self._descriptor(), 8, 0)
        except OSError:
            log.exception("token cache epoch unreadable (%s)", self.path)
            return None
        return int.from_bytes(raw.ljust(8, b"\0"), "little")

    def bump(self) -> None:
        try:
            os.pwrite(self._descriptor(), _fresh().to_bytes(8, "little"), 0)
        except OSError:
            log.exception("token cache epoch could not be raised (%s)", self.path)


class RedisEpoch(EpochStore):
    """The epoch as one Redis key, shared by every node: GET to read, SET to replace."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def current(self) -> int | None:
        try:
            return int(self._client.get(EPOCH_KEY) or 0)
        except Exception:
            log.exception("token cache epoch unreadable (Redis)")
            return None

    def bump(self) -> None:
        try:
            self._client.set(EPOCH_KEY, _fresh())
        except Exception:
            log.exception("token cache epoch could not be raised (Redis)")


@dataclass(frozen=True)
class Entry:
    value: Any
    epoch: int
    stored_at: float


class TokenCache:
    """Values by token hash, each good for `seconds` and only while the epoch it was read under is current.

    epoch = cache.epoch()               # before the database is read
    value = cache.get(token_hash, epoch)
    if value is None:
        value = read_from_database()
        cache.put(token_hash, value, epoch)
    """

    def __init__(self, store: EpochStore, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def epoch(self) -> int | None:
        return self.store.current() if self.enabled else None

    def get(self, key: str, epoch: int | None) -> Any | None:
        if epoch is None:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.epoch != epoch or time.monotonic() - entry.stored_at >= self.seconds:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        return entry.value

    def put(self, key: str, value: Any, epoch: int | None) -> None:
        if epoch is None:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # many tokens in a few seconds: start again rather than track ages
            self._entries[key] = Entry(value, epoch, time.monotonic())

    def invalidate(self) -> None:
        """Forget every entry here, and raise the shared epoch so that every other process forgets its own."""
        with self._lock:
            self._entries.clear()
        self.store.bump()


def create_token_cache(config: Mapping, instance_path: str | os.PathLike[str]) -> TokenCache:
    redis_url = config.get("REDIS_URL")
    store: EpochStore = RedisEpoch(redis_url) if redis_url else FileEpoch(Path(instance_path) / EPOCH_FILE)
    return TokenCache(store, float(config.get("PAT_CACHE_SECONDS", 0)))
