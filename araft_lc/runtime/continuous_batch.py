"""Continuous batching: one decode loop that concurrent calls join and leave between steps.

``araft_lc.runtime.batcher`` runs a padded ``generate`` per batch: every row's prompt is computed
again, and the batch runs until its longest row ends. Here one worker thread owns a running
batch instead. A new call is prefilled alone from its cached prefix (``araft_lc.runtime.prefix_cache``)
and its key/values are left-padded into the batch's cache; each step is one forward of one token
over all active rows; a row that ends (EOS, a stop string, its token cap, its deadline) leaves at
once, its key/values kept in the prefix cache for the run's next call. A sampled row draws from
its own seeded generator as ``generate`` would (``araft_lc.runtime.decoding.draw_token``), whatever
rows share its batch. Rows of one adapter share a forward: while calls for another adapter wait,
no new row is admitted, and when the batch has drained it switches to the oldest waiting call's.
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
from typing import Any, Callable, ContextManager, Optional

from araft_lc.runtime.batcher import Request
from araft_lc.runtime.batch_kv import BatchKV, full_attention_only
from araft_lc.runtime.decoding import draw_token, row_generator

__all__ = ["ContinuousBatcher"]

_LIVE: "weakref.WeakSet[ContinuousBatcher]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Every engine's thread ends before the interpreter tears down, while the libraries its last
    forward used still exist (a daemon engine thread left to end during teardown aborted the
    process at exit, "terminate called without an active exception", in two of five full runs)."""
    for engine in list(_LIVE):
        engine.close(wait=True)


@dataclass(frozen=True)
class _StopStrings:
    """A call's stop strings: ``generate``'s ``StopStringCriteria``, asked only after a token that
    can end one of them (most tokens cannot, and asking costs a dozen tensor ops a row a step)."""

    criteria: Any  # a transformers StopStringCriteria
    enders: frozenset[int]

    @classmethod
    def of(cls, criteria: Any) -> "_StopStrings":
        # the criteria matches from the last token back: it can match only if that token has a
        # positive end length for some stop string (the columns before the token-length column)
        ends = criteria.embedding_vec[:, criteria.max_valid_positions * criteria.num_stop_strings:-1]
        return cls(criteria, frozenset((ends > 0).any(dim=-1).nonzero().flatten().tolist()))

    def ended(self, ids: list[int]) -> bool:
        """Whether ``ids`` ends with one of the stop strings, as the criteria decides."""
        import torch

        if min(ids[-1], self.criteria.embedding_vec.shape[0] - 1) not in self.enders:  # clamped as it clamps
            return False
        return bool(self.criteria(torch.tensor([ids[-self.criteria.maximum_token_len:]]), None)[0])


@dataclass
class _Row:
    request: Request
    ids: list[int]  # the prompt, then each token generated so far
    prompt_len: int
    stop: Optional[_StopStrings]
    generator: Any = None  # a sampled row's torch.Generator

    @property
    def generated(self) -> list[int]:
        return self.ids[self.prompt_len:]


class ContinuousBatcher:
    """Greedy generation for concurrent requests in one running batch (same ``submit`` as ``Batcher``).

    Args:
        model: a transformers causal LM (a peft model with adapters works too).
        tokenizer: its tokenizer (EOS, stop strings).
        prefix_cache: an ``araft_lc.runtime.prefix_cache.PrefixCache``, or None to compute whole prompts.
        lock: held around each forward, shared with the model's other callers.
        use_adapter: ``use_adapter(name)`` is the context in which a forward runs that adapter.
        max_batch: rows decoded together at most.
    """

    def __init__(self, model: Any, tokenizer: Any, prefix_cache: Any, lock: threading.Lock,
                 use_adapter: Callable[[Optional[str]], ContextManager[Any]], max_batch: int = 8) -> None:
        self.model, self.tokenizer, self.prefix_cache, self.lock = model, tokenizer, prefix_cache, lock
        self.use_adapter, self.max_batch = use_adapter, max_batch
        if not full_attention_only(model.config):
            raise ValueError("continuous batching pads full-attention caches only; this model has other layers")
        if prefix_cache is not None:  # every active row's last sequence, and the prompts being read
            prefix_cache.max_entries = max(prefix_cache.max_entries, 2 * max_batch)
        eos = tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, (list, tuple)) else [eos])
        self._stops: dict[tuple[str, ...], _StopStrings] = {}
        self._queue: "queue.Queue[Optional[Request]]" = queue.Queue()
        self._unanswered: set[Future] = set()  # every call submitted and not yet answered, wherever it is
        self._calls = threading.Lock()  # guards _unanswered and _closed
        self._waiting: list[Request] = []
        self._rows: list[_Row] = []
        self._kv: Optional[BatchKV] = None
        self._adapter: Optional[str] = None
        self.batches: Counter[int] = Counter()  # rows in a decode step -> how many steps, for benchmarks
        # where the worker's time goes, for benchmarks: prefill (tokens computed) and decode steps
        self.stats = {"prefill_s": 0.0, "prefill_tokens": 0, "decode_s": 0.0}
        self._closed = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="araft-continuous-batcher")
        self._thread.start()
        _LIVE.add(self)

    def submit(self, ids: list[int], key: Any, deadline: Optional[float] = None) -> list[int]:
        """The new token ids for prompt ``ids`` under ``key`` (a ``Decoding``); blocks."""
        request = Request(list(ids), key, deadline)
        with self._calls:
            if self._closed:
                raise RuntimeError("the continuous batcher is closed")
            self._unanswered.add(request.future)
        request.future.add_done_callback(self._answered)
        self._queue.put(request)
        return request.future.result()

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

    # -- the worker ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while self._take(block=not self._rows):
            try:
                for request in self._admissible():
                    self._join(request)
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

    def _admissible(self) -> list[Any]:
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

    def _join(self, request: Request) -> None:
        """Prefill one request from its cached prefix; it joins the batch unless already done."""
        import torch

        try:
            adapter = request.key.adapter
            row = _Row(request, list(request.ids), len(request.ids), self._stop_strings(request.key.stop),
                       row_generator(request.key, self.model.device))
            with self.lock, torch.inference_mode(), self.use_adapter(adapter):
                start = time.perf_counter()
                past = self.prefix_cache.lookup(adapter, row.ids) if self.prefix_cache is not None else None
                if past is None:
                    from transformers import DynamicCache

                    past = DynamicCache(config=self.model.config)
                done = past.get_seq_length()
                n = len(row.ids)
                out = self.model(input_ids=torch.tensor([row.ids[done:]], device=self.model.device),
                                 attention_mask=torch.ones(1, n, dtype=torch.long, device=self.model.device),
                                 position_ids=torch.arange(done, n, device=self.model.device)[None],
                                 cache=past, use_cache=True, logits_to_keep=1)
                if self.prefix_cache is not None:  # the prompt, for the calls that share its start
                    self.prefix_cache.store(adapter, row.ids, past)
                self.stats["prefill_s"] += time.perf_counter() - start
                self.stats["prefill_tokens"] += n - done
            row.ids.append(draw_token(out.logits[0, -1], request.key, row.generator))
            if self._finished(row):
                self._leave(row, past)
                return
            if self._kv is None:
                self._kv = BatchKV(past, self.max_batch)
            else:
                self._kv.add(past)  # the batch is unchanged if this fails
        except Exception as e:  # this request only: the batch goes on
            if not request.future.done():
                request.future.set_exception(e)
            return
        self._rows.append(row)

    def _step(self) -> None:
        """One token for every active row; rows that end leave."""
        import torch

        kv = self._kv
        assert kv is not None
        device = self.model.device
        try:
            with self.lock, torch.inference_mode(), self.use_adapter(self._adapter):
                start = time.perf_counter()
                last = torch.tensor([[row.ids[-1]] for row in self._rows], device=device)
                mask, positions = kv.next_mask_and_positions()
                out = self.model(input_ids=last, attention_mask=mask, position_ids=positions, cache=kv.cache,
                                 use_cache=True)
                kv.advanced(mask)
                logits = out.logits[:, -1]
                tokens = logits.argmax(-1).tolist()
                for i, row in enumerate(self._rows):
                    if row.generator is not None:
                        tokens[i] = draw_token(logits[i], row.request.key, row.generator)
                self.stats["decode_s"] += time.perf_counter() - start
        except Exception as e:  # a shared forward failed: every row in it fails
            self._fail_batch(e)
            return
        self.batches[len(self._rows)] += 1
        ended: list[tuple[int, Optional[Exception]]] = []
        for i, (row, token) in enumerate(zip(self._rows, tokens)):
            row.ids.append(token)
            try:
                if self._finished(row):
                    ended.append((i, None))
            except Exception as e:  # this row only
                ended.append((i, e))
        for i, error in reversed(ended):  # the last first, so the indices stay valid
            past = kv.remove(i)  # if this fails, the row is still in the batch and fails with it
            row = self._rows.pop(i)
            if error is None:
                self._leave(row, past)
            else:
                row.request.future.set_exception(error)
        if not self._rows:
            self._kv = None

    def _fail_batch(self, error: Exception) -> None:
        for row in self._rows:
            if not row.request.future.done():
                row.request.future.set_exception(error)
        self._rows, self._kv = [], None

    def _finished(self, row: _Row) -> bool:
        """Whether ``row`` ends with the token it just got (the order of ``generate``'s criteria)."""
        d, token = row.request.key, row.ids[-1]
        if token in self._eos or len(row.generated) >= d.max_new_tokens:
            return True
        if row.stop is not None and row.stop.ended(row.ids):
            return True
        deadline = row.request.deadline
        return deadline is not None and time.time() >= deadline

    def _leave(self, row: _Row, past: Any) -> None:
        """Answer ``row`` and keep its key/values (all but its last token) for the run's next call."""
        row.request.future.set_result(row.generated)
        if self.prefix_cache is not None:
            with self.lock:
                self.prefix_cache.store(row.request.key.adapter, row.ids, past)

    def _stop_strings(self, stop: tuple[str, ...]) -> Optional[_StopStrings]:
        if not stop:
            return None
        if stop not in self._stops:
            from transformers import StopStringCriteria

            self._stops[stop] = _StopStrings.of(StopStringCriteria(self.tokenizer, list(stop)))
        return self._stops[stop]
