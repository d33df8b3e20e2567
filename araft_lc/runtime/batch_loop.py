"""The scheduling half of continuous batching, whatever runs the forward.

One worker thread owns a running batch that concurrent calls join and leave between decode
steps. This module holds what does not depend on the model: the queue of calls, which waiting
calls join (rows of one adapter share a forward: while calls for another adapter wait, no new row
is admitted, and when the batch has drained it switches to the oldest waiting call's), when a row
ends (EOS, a stop string, its token cap, its deadline, in ``generate``'s order), and that every
call is answered, closed or not. A subclass supplies ``_join`` (a row enters) and ``_step`` (one
token for every row): ``araft_lc.runtime.torch.continuous_batch`` on a transformers model,
``araft_lc.runtime.llama_cpp.engine`` on llama.cpp.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Optional

from araft_lc.runtime.decoding import Decoding
from araft_lc.runtime.request import Request

__all__ = ["BatchLoop", "Row", "StopStrings", "TextStopStrings"]

_LIVE: weakref.WeakSet[BatchLoop] = weakref.WeakSet()
_WORKERS: list[threading.Thread] = []  # every worker not yet finished, held past its loop's collection


@atexit.register
def _close_all() -> None:
    """Every engine's thread ends before the interpreter tears down, while the libraries its last
    forward used still exist (a daemon engine thread left to end during teardown aborted the
    process at exit, "terminate called without an active exception", in two of five full runs;
    so did the worker of an engine collected just before exit, closed but not yet finished, which
    is why the threads themselves are joined too)."""
    for loop in list(_LIVE):
        loop.close(wait=True)
    for thread in list(_WORKERS):
        thread.join()


@dataclass(frozen=True)
class StopStrings:
    """A call's stop strings: ``generate``'s ``StopStringCriteria``, asked only after a token that
    can end one of them (most tokens cannot, and asking costs a dozen tensor ops a row a step)."""

    criteria: Any  # a transformers StopStringCriteria
    enders: frozenset[int]

    @classmethod
    def of(cls, criteria: Any) -> StopStrings:
        # the criteria matches from the last token back: it can match only if that token has a
        # positive end length for some stop string (the columns before the token-length column)
        ends = criteria.embedding_vec[:, criteria.max_valid_positions * criteria.num_stop_strings : -1]
        return cls(criteria, frozenset((ends > 0).any(dim=-1).nonzero().flatten().tolist()))

    def ended(self, ids: list[int]) -> bool:
        """Whether ``ids`` ends with one of the stop strings, as the criteria decides."""
        import torch

        if min(ids[-1], self.criteria.embedding_vec.shape[0] - 1) not in self.enders:  # clamped as it clamps
            return False
        return bool(self.criteria(torch.tensor([ids[-self.criteria.maximum_token_len :]]), None)[0])


@dataclass(frozen=True)
class TextStopStrings:
    """A call's stop strings decided on text, for a tokenizer without transformers (a GGUF's), by
    ``StopStringCriteria``'s rule as its code applies it: a stop string ends within the last
    token's text, beginning there or in the tokens before it, the token free to run past its end.
    Read on the decoded text of the last tokens rather than on token strings."""

    decode: Callable[[list[int]], str]
    stop: tuple[str, ...]
    window: int  # tokens enough to hold the longest stop string, and one more

    @classmethod
    def of(cls, tokenizer: Any, stop: tuple[str, ...]) -> TextStopStrings:
        return cls(
            lambda ids: tokenizer.decode(ids, skip_special_tokens=False),
            stop,
            max(len(s.encode("utf-8")) for s in stop) + 1,
        )

    def ended(self, ids: list[int]) -> bool:
        """Whether a stop string ends within the text of ``ids[-1]``."""
        tail = ids[-self.window :]
        # a character the last token completes counts as its own: a partial one decodes as U+FFFD
        text, before = self.decode(tail), len(self.decode(tail[:-1]).rstrip("\ufffd"))
        return any(text.find(s, max(0, before - len(s) + 1)) != -1 for s in self.stop)


@dataclass
class Row:
    request: Request
    ids: list[int]  # the prompt, then each token generated so far
    prompt_len: int
    stop: Optional[StopStrings | TextStopStrings]
    generator: Any = None  # a sampled row's generator (torch's, or numpy's on llama.cpp)
    state: Any = None  # what the subclass keeps for the row (its llama.cpp sequence, say)

    @property
    def generated(self) -> list[int]:
        return self.ids[self.prompt_len :]


class BatchLoop:
    """Generation for concurrent requests in one running batch (same ``submit`` as ``Batcher``).

    Subclasses set their own attributes, then call ``BatchLoop.__init__``, which starts the worker.

    Args:
        tokenizer: the model's tokenizer (EOS, stop strings).
        max_batch: rows decoded together at most.
        name: the worker thread's name.
    """

    def __init__(self, tokenizer: Any, max_batch: int, name: str) -> None:
        self.tokenizer, self.max_batch = tokenizer, max_batch
        eos = tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, (list, tuple)) else [eos])
        self._stops: dict[tuple[str, ...], StopStrings | TextStopStrings] = {}
        self._queue: queue.Queue[Optional[Request]] = queue.Queue()
        self._unanswered: set[Future] = set()  # every call submitted and not yet answered, wherever it is
        self._calls = threading.Lock()  # guards _unanswered and _closed
        self._waiting: list[Request] = []
        self._rows: list[Row] = []
        self._adapter: Optional[str] = None
        self.batches: Counter[int] = Counter()  # rows in a decode step -> how many steps, for benchmarks
        # where the worker's time goes, for benchmarks: prefill (tokens computed) and decode steps
        self.stats = {"prefill_s": 0.0, "prefill_tokens": 0, "decode_s": 0.0}
        self._closed = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)
        self._thread.start()
        _LIVE.add(self)
        _WORKERS[:] = [t for t in _WORKERS if t.is_alive()] + [self._thread]

    def submit(
        self,
        ids: list[int],
        key: Decoding,
        deadline: Optional[float] = None,
        on_token: Optional[Callable[[int], None]] = None,
    ) -> list[int]:
        """The new token ids for prompt ``ids`` under ``key`` (a ``Decoding``); blocks.
        ``on_token`` (from the worker thread) is given each new token as it is decided."""
        return self.submit_async(ids, key, deadline, on_token).result()

    def submit_async(
        self,
        ids: list[int],
        key: Decoding,
        deadline: Optional[float] = None,
        on_token: Optional[Callable[[int], None]] = None,
    ) -> Future:
        """``submit`` without waiting: the future of the new token ids (a stream reads the tokens
        from ``on_token`` in its own thread meanwhile)."""
        request = Request(list(ids), key, deadline, on_token=on_token)
        with self._calls:
            if self._closed:
                raise RuntimeError("the continuous batcher is closed")
            self._unanswered.add(request.future)
        request.future.add_done_callback(self._answered)
        self._queue.put(request)
        return request.future

    def _answered(self, future: Future) -> None:
        with self._calls:
            self._unanswered.discard(future)

    def close(self, wait: bool = True) -> None:
        """Stop the worker (and wait for it); calls still waiting or running get a RuntimeError."""
        with self._calls:
            closing, self._closed = not self._closed, True
        if closing:
            self._queue.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    # -- what a subclass supplies -------------------------------------------------------------

    def _join(self, request: Request) -> Optional[Row]:
        """Start ``request``'s row: the row, to join the batch, or None when it already ended (its
        call answered). An exception fails this request only."""
        raise NotImplementedError

    def _step(self) -> None:
        """One token for every active row (``_append``); the rows that ended leave (``_leave``)."""
        raise NotImplementedError

    def _leave(self, row: Row) -> None:
        """``row`` ended: its call is answered; a subclass keeps what the run's next call can reuse."""
        row.request.future.set_result(row.generated)

    def _fail_batch(self, error: Exception) -> None:
        for row in self._rows:
            if not row.request.future.done():
                row.request.future.set_exception(error)
        self._rows = []

    # -- the worker ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while self._take(block=not self._rows):
            try:
                for request in self._admissible():
                    self._admit(request)
                if self._rows:
                    self._step()
            except Exception as e:  # the batch's own bookkeeping failed: its rows fail, the worker goes on
                self._fail_batch(e)
        error = RuntimeError("the continuous batcher was closed")
        with self._calls:  # waiting, running, or (a bug) lost: no call waits forever
            unanswered = list(self._unanswered)
        for future in unanswered:
            if not future.done():
                future.set_exception(error)

    def _admit(self, request: Request) -> None:
        try:
            row = self._join(request)
        except Exception as e:  # this request only: the batch goes on
            if not request.future.done():
                request.future.set_exception(e)
            return
        if row is not None:
            self._rows.append(row)

    def _take(self, block: bool) -> bool:
        """Move queued requests to the waiting list; False once closed."""
        while True:
            try:
                request = self._queue.get(block=block and not self._waiting)
            except queue.Empty:
                return True
            if request is None:
                return False
            self._waiting.append(request)
            block = False

    def _admissible(self) -> list[Request]:
        """Waiting requests that join now: the batch's adapter, in order, while there is room."""
        if not self._rows and self._waiting:
            self._adapter = self._waiting[0].key.adapter
        if any(r.key.adapter != self._adapter for r in self._waiting):
            if self._rows:  # drain, then switch to the oldest waiting call's adapter
                return []
        room = self.max_batch - len(self._rows)
        chosen = [r for r in self._waiting if r.key.adapter == self._adapter][:room]
        taken = {id(r) for r in chosen}
        self._waiting = [r for r in self._waiting if id(r) not in taken]
        return chosen

    def _new_row(self, request: Request, device: Any = "cpu") -> Row:
        return Row(
            request,
            list(request.ids),
            len(request.ids),
            self._stop_strings(request.key.stop),
            self._generator(request.key, device),
        )

    def _generator(self, decoding: Any, device: Any) -> Any:
        """A sampled row's generator (a seeded ``torch.Generator``); None for greedy."""
        from araft_lc.runtime.decoding import row_generator

        return row_generator(decoding, device)

    def _append(self, row: Row, token: int) -> bool:
        """Give ``row`` its next token; whether the row ended with it (the order of ``generate``'s
        criteria: EOS, the token cap, a stop string, the deadline)."""
        row.ids.append(token)
        if row.request.on_token is not None:
            row.request.on_token(token)
        d = row.request.key
        if token in self._eos or len(row.generated) >= d.max_new_tokens:
            return True
        if row.stop is not None and row.stop.ended(row.ids):
            return True
        deadline = row.request.deadline
        return deadline is not None and time.time() >= deadline

    def _stop_strings(self, stop: tuple[str, ...]) -> Optional[StopStrings | TextStopStrings]:
        if not stop:
            return None
        if stop not in self._stops:
            self._stops[stop] = self._make_stop_strings(stop)
        return self._stops[stop]

    def _make_stop_strings(self, stop: tuple[str, ...]) -> StopStrings | TextStopStrings:
        """How a row's stop strings are decided: ``generate``'s own criteria, on a transformers
        tokenizer."""
        from transformers import StopStringCriteria

        return StopStrings.of(StopStringCriteria(self.tokenizer, list(stop)))
