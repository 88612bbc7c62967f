"""Counters that expire, shared by every app node: Redis at REDIS_URL, or this process's memory without it.

The same store flask-limiter counts in (RATELIMIT_STORAGE_URI), through the `limits` package's
storage, for counts the limiter cannot keep: failed sign-ins per account, and how long an account
must wait before the next try.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from limits.storage import Storage, storage_from_string

from services.memory_limits import SCHEME as MEMORY_SCHEME

log = logging.getLogger(__name__)
KEY_PREFIX = "medsight"


class Counters:
    """Named integer counters with an expiry. A store that does not answer counts as empty (logged)."""

    def __init__(self, storage_uri: str) -> None:
        self._storage: Storage = storage_from_string(storage_uri)

    @staticmethod
    def _key(name: str) -> str:
        return f"{KEY_PREFIX}:{name}"

    def increment(self, name: str, expires_in: float) -> int:
        """Add one and return the new count; a new counter lives expires_in seconds from now."""
        try:
            return int(self._storage.incr(self._key(name), int(max(1, expires_in))))
        except Exception:
            log.exception("counter store unavailable (increment %s)", name)
            return 0

    def get(self, name: str) -> int:
        try:
            return int(self._storage.get(self._key(name)))
        except Exception:
            log.exception("counter store unavailable (get %s)", name)
            return 0

    def seconds_left(self, name: str) -> float:
        """How long the counter has to live (0 if it is gone)."""
        if not self.get(name):
            return 0.0
        try:
            return max(0.0, float(self._storage.get_expiry(self._key(name))) - time.time())
        except Exception:
            log.exception("counter store unavailable (expiry of %s)", name)
            return 0.0

    def clear(self, name: str) -> None:
        try:
            self._storage.clear(self._key(name))
        except Exception:
            log.exception("counter store unavailable (clear %s)", name)

    def reset(self) -> None:
        """Forget every counter (tests)."""
        self._storage.reset()


def create_counters(config: Mapping) -> Counters:
    return Counters(config.get("RATELIMIT_STORAGE_URI") or f"{MEMORY_SCHEME}://")
