"""A few threads per process for blocking I/O that a request overlaps with its own work.

An upload's photo is written to storage (a flushed file, or an S3 PUT) while the model reads the image: the
thread waits on the disk or the network while the request's thread computes, instead of one after the other.
Each process starts its own threads on first use: a gunicorn worker forked from the preloaded master must
not inherit a pool whose threads do not exist in it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# A request has one or two writes in flight (its photo, a DICOM original), a batch up to its size. Threads
# are started only as writes overlap, so a generous ceiling costs nothing at rest; one too low would make a
# threaded worker's requests queue behind each other's writes.
IO_THREADS = 32

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_owner_pid: int | None = None


def in_background(function: Callable[..., Any], *args: Any) -> Future:
    """Run function(*args) on this process's I/O threads; the future holds its result or its exception."""
    global _executor, _owner_pid
    with _lock:
        if _executor is None or _owner_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="medsight-io")
            _owner_pid = os.getpid()
        return _executor.submit(function, *args)
