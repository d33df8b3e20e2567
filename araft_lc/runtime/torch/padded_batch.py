"""Gather concurrent generation requests into one padded batch.

When several agent runs call the same local model at once (``batch``, ``abatch``, the
evaluator's concurrency), each call would otherwise wait for the one before. Decoding reads all
the weights once per token whatever the batch, on a CPU as on a GPU, so one ``generate`` over
eight left-padded prompts costs little more than over one. A single worker thread takes the
first waiting request, waits ``wait_s`` for others with the same settings (up to
``max_batch``), and runs them together; each row stops on its own (EOS or a stop string).
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from typing import Any, Callable, Optional

from araft_lc.runtime.decoding import Decoding
from araft_lc.runtime.request import Request

__all__ = ["Batcher"]


class Batcher:
    """Runs ``run_batch(requests) -> [result per request]`` on batches of waiting requests."""

    def __init__(
        self, run_batch: Callable[[list[Request]], list[Any]], max_batch: int = 8, wait_s: float = 0.005
    ) -> None:
        self.run_batch, self.max_batch, self.wait_s = run_batch, max_batch, wait_s
        self._queue: queue.Queue[Request] = queue.Queue()
        self._held: list[Request] = []  # taken from the queue but of another key: first next time
        self.batches: Counter[int] = Counter()  # batch size -> how many ran, for benchmarks and tests
        self._thread = threading.Thread(target=self._work, daemon=True, name="araft-batcher")
        self._thread.start()

    def submit(self, ids: list[int], key: Decoding, deadline: Optional[float] = None) -> Any:
        """Generate for ``ids``; blocks until the result (or the batch's exception)."""
        request = Request(ids, key, deadline)
        self._queue.put(request)
        return request.future.result()

    def _next(self, block: bool, timeout: float | None = None) -> Request | None:
        if self._held:
            return self._held.pop(0)
        try:
            return self._queue.get(block=block, timeout=timeout)
        except queue.Empty:
            return None

    def _work(self) -> None:
        while True:
            first = self._next(block=True)
            assert first is not None
            batch: list[Request] = [first]
            others: list[Request] = []
            for _ in range(2 * self.max_batch):  # bounded, however many other keys wait
                if len(batch) == self.max_batch:
                    break
                nxt = self._next(block=True, timeout=self.wait_s)
                if nxt is None:
                    break
                (batch if nxt.key == first.key else others).append(nxt)
            self._held = others + self._held
            self.batches[len(batch)] += 1
            try:
                results = self.run_batch(batch)
            except BaseException as e:  # each caller gets the error in its own thread
                for r in batch:
                    r.future.set_exception(e)
                continue
            for r, result in zip(batch, results, strict=True):
                r.future.set_result(result)
