"""LiteRT interpreters: one over an exported classifier, and the pool that lends one per concurrent call.

No TensorFlow here; export checks a candidate file with the same LiteInterpreter that serving runs.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
from ai_edge_litert.interpreter import Interpreter

T = TypeVar("T")


class InterpreterPool:
    """Interpreters over one model, lent one per concurrent call (LiteRT interpreters are not thread-safe).

    Grows to the peak number of concurrent calls; a pool rather than one per thread, because servers that
    start a thread per request would otherwise build one for every request. The first is built at once,
    so a model that cannot load fails at start-up, not on the first request.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._idle.put(build())

    @contextmanager
    def borrow(self) -> Iterator[T]:
        try:
            interpreter = self._idle.get_nowait()
        except queue.Empty:
            interpreter = self._build()
        try:
            yield interpreter
        finally:
            self._idle.put(interpreter)


class LiteInterpreter:
    """One LiteRT interpreter over an exported graph (image -> logits and, if exported, class activation maps).

    Not thread-safe: ModelRunner lends each call its own from a pool; export checks a candidate file with one.
    """

    def __init__(self, model_bytes: bytes, num_threads: int = 1) -> None:
        self._interpreter = Interpreter(model_content=model_bytes, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        outputs = self._interpreter.get_output_details()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._logits = next(o["index"] for o in outputs if len(o["shape"]) == 2)
        self._cams = next((o["index"] for o in outputs if len(o["shape"]) == 4), None)

    def run(self, batch: np.ndarray, *, with_cams: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's own class probabilities (softmax of its logits) per image, and its CAMs if asked for.

        One invoke per image, on the interpreter's batch-of-one input: resizing the input to the whole batch
        gives the same numbers but was no faster for these networks on XNNPACK (2-core CPU, batches of 8 to 32)
        and holds a tensor arena per batch size.
        """
        probabilities, cams = [], []
        for x in batch:
            self._interpreter.set_tensor(self._input, x[None].astype(np.float32, copy=False))
            self._interpreter.invoke()
            probabilities.append(softmax(self._interpreter.get_tensor(self._logits)[0].astype(np.float64)))
            if with_cams and self._cams is not None:
                cams.append(self._interpreter.get_tensor(self._cams)[0].astype(np.float32))
        return np.stack(probabilities), (np.stack(cams) if cams else None)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()
