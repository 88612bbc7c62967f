"""limits' in-process counter store without its expiry thread, for flask-limiter and the sign-in counters
when REDIS_URL is not set (RATELIMIT_STORAGE_URI "medsight-memory://").

limits' MemoryStorage starts a threading.Timer (a new thread) on every count it takes once the last one has
run, 10 ms later, to drop expired keys: under gunicorn that is a thread started per upload, and
Thread.start() waits until the new thread has run (a GIL hand-over, up to milliseconds on a busy machine).
Expired counts are already ignored where they are read (get() checks the expiry); the sweep only frees their
memory, so here it runs inline, at most once a second, on the request that counts.
"""

from __future__ import annotations

import time

from limits.storage import MemoryStorage

SCHEME = "medsight-memory"
SWEEP_EVERY_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()  # the one MemoryStorage started; no other is started
        self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces MemoryStorage.__schedule_expiry
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY_SECONDS
            self._MemoryStorage__expire_events()

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.timer.cancel()
