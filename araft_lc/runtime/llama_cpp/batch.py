"""Continuous batching on one llama.cpp context (``araft_lc.runtime.llama_cpp.engine``).

Each row decodes in a llama.cpp sequence of its own; one ``llama_decode`` per step carries the last
token of every decoding row and as much of the joining rows' prompts as fits (``BATCH_TOKENS``).
A sequence keeps its key/values after its call: a new call takes the free sequence that holds the
longest start of its prompt under its adapter (the shared system prompt at least, its own run's
last prompt at best), else the least recently used, and prefills only the rest. The scheduling
(admission by adapter, when a row ends, every call answered) is ``BatchLoop``'s.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from araft_lc.runtime.batch_loop import BatchLoop, Row, TextStopStrings
from araft_lc.runtime.decoding import draw_token_numpy, numpy_generator
from araft_lc.runtime.prefix_cache import common_prefix
from araft_lc.runtime.request import Request

__all__ = ["BATCH_TOKENS", "LlamaCppBatcher", "decode", "logits_at", "put", "use_adapter"]

BATCH_TOKENS = 512  # tokens one llama_decode takes at most; a longer prefill continues next step


@dataclass
class _Sequence:
    """One llama.cpp sequence: the tokens whose key/values it holds, under which adapter."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    adapter: Optional[str] = None
    busy: bool = False
    used: float = 0.0  # when its last call ended, for least-recently-used reuse
    pending: list[int] = field(default_factory=list)  # prompt tokens still to prefill


class LlamaCppBatcher(BatchLoop):
    """Continuous batching on one llama.cpp context: a sequence per row, one decode per step."""

    def __init__(
        self,
        llama: Any,
        ctx: Any,
        vocab: int,
        lora: dict[str, Any],
        merged: Optional[str],
        tokenizer: Any,
        max_batch: int,
    ) -> None:
        self.llama, self.ctx, self.vocab = llama, ctx, vocab  # the llama_cpp module, a context, its vocabulary
        self.lora = lora  # adapter name -> llama_adapter_lora pointer
        self.merged = merged  # the adapter in the weights, which needs no switching
        self.sequences = [_Sequence(i) for i in range(max_batch)]
        self._batch = self.llama.llama_batch_init(BATCH_TOKENS + max_batch, 0, 1)
        self._memory = self.llama.llama_get_memory(self.ctx)
        self._active_adapter: Any = ...  # what the context runs now (None: the base model)
        self.reused_tokens = 0  # prompt tokens whose key/values a sequence already held
        super().__init__(tokenizer, max_batch, "araft-llama-cpp")

    def free(self) -> None:
        self.llama.llama_batch_free(self._batch)

    def _join(self, request: Request) -> Optional[Row]:
        """Give the request the free sequence that holds the longest start of its prompt (of its
        adapter), else the least recently used; the rest of the prompt prefills in the steps."""
        row = self._new_row(request)
        adapter = request.key.adapter
        free = [s for s in self.sequences if not s.busy]
        seq = max(free, key=lambda s: (common_prefix(s.tokens, row.ids) if s.adapter == adapter else -1, -s.used))
        keep = min(common_prefix(seq.tokens, row.ids) if seq.adapter == adapter else 0, len(row.ids) - 1)
        self.llama.llama_memory_seq_rm(self._memory, seq.seq_id, keep, -1)
        seq.tokens, seq.adapter, seq.busy, seq.pending = row.ids[:keep], adapter, True, row.ids[keep:]
        self.reused_tokens += keep
        row.state = seq
        return row

    def _step(self) -> None:
        """One ``llama_decode``: the last token of every decoding row, and as much of the joining
        rows' prompts as fits; every row whose last token was read gets its next one."""
        try:
            start = time.perf_counter()
            self._use_adapter(self._adapter)
            batch, n, reading = self._batch, 0, []  # reading: (row, batch index of its logits)
            # in sequence order: llama.cpp splits a batch whose sequences are out of order into
            # several passes (slower: benchmarks/RESULTS.md, "llama.cpp side by side")
            decoding = sorted((r for r in self._rows if not r.state.pending), key=lambda r: r.state.seq_id)
            budget = BATCH_TOKENS
            for row in decoding:
                put(self._batch, n, row.ids[-1], len(row.state.tokens), row.state.seq_id, True)
                row.state.tokens.append(row.ids[-1])
                reading.append((row, n))
                n += 1
            prefill = 0
            for row in self._rows:
                seq = row.state
                if not seq.pending or budget <= 0:
                    continue
                chunk, seq.pending = seq.pending[:budget], seq.pending[budget:]
                for i, token in enumerate(chunk):
                    put(self._batch, n, token, len(seq.tokens), seq.seq_id, i == len(chunk) - 1 and not seq.pending)
                    seq.tokens.append(token)
                    n += 1
                if not seq.pending:
                    reading.append((row, n - 1))
                budget -= len(chunk)
                prefill += len(chunk)
            batch.n_tokens = n
            decode(self.llama, self.ctx, batch)
            tokens = []
            for row, i in reading:
                logits = logits_at(self.llama, self.ctx, i, self.vocab)
                tokens.append(draw_token_numpy(logits, row.request.key, row.generator))
            spent = time.perf_counter() - start
            self.stats["prefill_tokens"] += prefill
            self.stats["prefill_s" if prefill else "decode_s"] += spent
        except Exception as e:  # a shared decode failed: every row in it fails
            self._fail_batch(e)
            return
        if decoding and not prefill:  # a step that read prompts too is counted as prefill
            self.batches[len(decoding)] += 1
        ended: list[tuple[Row, Optional[Exception]]] = []
        for (row, _), token in zip(reading, tokens, strict=True):
            try:
                if self._append(row, token):
                    ended.append((row, None))
            except Exception as e:  # this row only
                ended.append((row, e))
        for row, error in ended:
            self._rows.remove(row)
            self._release(row.state)
            if error is None:
                self._leave(row)
            else:
                row.request.future.set_exception(error)

    def _generator(self, decoding: Any, device: Any) -> Any:
        return numpy_generator(decoding)  # no torch on this backend

    def _make_stop_strings(self, stop: tuple[str, ...]) -> TextStopStrings:
        return TextStopStrings.of(self.tokenizer, stop)  # any tokenizer that decodes: the GGUF's too

    def _fail_batch(self, error: Exception) -> None:
        for row in self._rows:  # what a failed decode left in them is unknown: forget it
            self._release(row.state, forget=True)
        super()._fail_batch(error)

    def _release(self, seq: _Sequence, forget: bool = False) -> None:
        seq.busy, seq.pending, seq.used = False, [], time.monotonic()
        if forget:
            self.llama.llama_memory_seq_rm(self._memory, seq.seq_id, 0, -1)
            seq.tokens = []

    def _use_adapter(self, adapter: Optional[str]) -> None:
        if adapter == self._active_adapter or (adapter is not None and adapter == self.merged):
            return
        use_adapter(self.llama, self.ctx, None if adapter is None else self.lora[adapter], adapter)
        self._active_adapter = adapter


def put(batch: Any, i: int, token: int, position: int, seq_id: int, logits: bool) -> None:
    """Set entry ``i`` of a ``llama_batch``: ``token`` at ``position`` of sequence ``seq_id``,
    with its logits kept or not."""
    batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
    batch.seq_id[i][0], batch.logits[i] = seq_id, logits


def decode(llama: Any, ctx: Any, batch: Any) -> None:
    """``llama_decode`` of ``batch`` in ``ctx``.

    Raises:
        RuntimeError: llama.cpp refused it (1: no room in the key/value cache).
    """
    status = llama.llama_decode(ctx, batch)
    if status != 0:
        raise RuntimeError(f"llama_decode returned {status} (1: no room in the key/value cache)")


def logits_at(llama: Any, ctx: Any, i: int, vocab: int) -> Any:
    """The logits of batch entry ``i`` of the last decode, a numpy view valid until the next one."""
    import numpy as np

    return np.ctypeslib.as_array(llama.llama_get_logits_ith(ctx, i), shape=(vocab,))


def use_adapter(llama: Any, ctx: Any, pointer: Any, name: Optional[str]) -> None:
    """Run ``ctx`` with the LoRA adapter at ``pointer`` (``name`` for the error), or none (None).

    Raises:
        RuntimeError: llama.cpp could not apply it.
    """
    if pointer is None:
        status = llama.llama_set_adapters_lora(ctx, None, 0, None)
    else:
        pointers = (llama.llama_adapter_lora_p_ctypes * 1)(pointer)
        status = llama.llama_set_adapters_lora(ctx, pointers, 1, (ctypes.c_float * 1)(1.0))
    if status != 0:
        raise RuntimeError(f"llama.cpp could not apply adapter {name!r} (status {status})")
