"""``DecodeEngine``: text in, text out, on one local causal LM, by the cheapest path that fits.

The chat model renders messages into prompt text; the engine does the rest, as LangChain's
``HuggingFacePipeline`` does under ``ChatHuggingFace``: it tokenizes the prompt (refusing one that
does not fit the context before any prefill), picks the decode path (one ``generate`` with the
prefix cache, a padded batch, the continuous batch, or a static cache), switches adapters, stops
each row at its deadline and stop strings, and streams text from a worker thread. It is safe to
call from many threads: one lock guards the model.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from typing import Any, Iterator, Literal, Optional, Sequence, Union

from araft_lc.runtime.decoding import Completion, Decoding, deadline_criteria, generation_kwargs, seed_sampling
from araft_lc.runtime.request import Request
from araft_lc.runtime.text_engine import TextEngine, streamed

__all__ = ["DecodeEngine"]


def _adapter_context(model: Any, has_adapters: bool, adapter: Optional[str], merged: bool = False) -> Any:
    """The context in which ``model`` runs ``adapter`` (None: the base model); with ``merged``,
    the one adapter is merged into the weights once (``araft_lc.runtime.torch.lora_merge``)."""
    if not has_adapters:
        return contextlib.nullcontext()
    if merged:
        if adapter is None:  # check_adapter refuses it first; a batcher's call may come without that check
            raise ValueError("the base model asked for, but an adapter is merged into the weights (merge_lora=True)")
        from araft_lc.runtime.torch.lora_merge import merge_once

        merge_once(model, adapter)  # and no set_adapter: peft would unmerge for it
        return contextlib.nullcontext()
    if adapter is None:
        return model.disable_adapter()
    model.set_adapter(adapter)
    return contextlib.nullcontext()


class DecodeEngine(TextEngine):
    """Generation on ``model`` (a transformers causal LM, or a peft model with ``adapters``).

    Args:
        model, tokenizer: the loaded model and its tokenizer (with a pad token).
        adapters: the names of the LoRA adapters loaded into ``model``.
        merged: the one adapter merged into the weights (``araft_lc.runtime.torch.lora_merge``); a call
            that asks for another, or for none, is refused.
        prefix_cache: reuse the key/values of the longest token prefix already read (the shared
            system prompt, the run so far; ``araft_lc.runtime.prefix_cache``). None (the default)
            turns it on where it was measured to pay: on a CPU, not on CUDA, where prefill is
            cheap and the cache's copies are not (benchmarks/RESULTS.md).
        prefix_cache_entries: how many sequences' key/values the prefix cache keeps.
        max_batch_size: greedy calls that arrive together (concurrent runs) are generated in one
            batch of up to this many; 1 turns batching off. A batch of one takes the prefix-cache
            path. Sampled calls run one by one, so a seed reproduces them.
        batch_wait_ms: how long the padded batcher waits for calls to join the first.
        batching: ``"padded"`` gathers waiting calls into one ``generate``; ``"continuous"``
            decodes in one running batch that calls join and leave between tokens, each
            prefilled from its cached prefix (``araft_lc.runtime.torch.continuous_batch``). None (the default):
            continuous on a CPU, where it measured faster than padded (benchmarks/RESULTS.md);
            padded on CUDA, where only padded is measured, and with ``decode="static"``, whose
            calls run one at a time.
        decode: ``dynamic`` (the default): ``generate``'s growing cache; ``static``: batch-1 calls
            decode in a static cache of a few fixed lengths (``araft_lc.runtime.torch.static_decode``),
            which a GPU runs compiled; the prefix cache then lives in it, cropped in place. Batches of
            several rows stay dynamic. ``warm_up()`` compiles it ahead.
        static_cache_lengths: the static caches' lengths (default powers of two from 512 to
            the model's context); a call longer than the largest decodes dynamically.
        compile_decode: with ``decode="static"``: None compiles where transformers does (CUDA,
            not 4-bit); True everywhere, NF4 and CPU included; False never.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        adapters: Sequence[str] = (),
        merged: Optional[str] = None,
        prefix_cache: Optional[bool] = None,
        prefix_cache_entries: int = 4,
        max_batch_size: int = 8,
        batch_wait_ms: float = 5.0,
        batching: Optional[Literal["padded", "continuous"]] = None,
        decode: Literal["dynamic", "static"] = "dynamic",
        static_cache_lengths: Optional[Sequence[int]] = None,
        compile_decode: Optional[bool] = None,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.adapters, self.merged = tuple(adapters), merged
        self.decode, self.static_cache_lengths, self.compile_decode = decode, static_cache_lengths, compile_decode
        self.lock = threading.Lock()
        cpu = not str(model.device).startswith("cuda")
        self.reuses_prefix = cpu if prefix_cache is None else prefix_cache
        self.prefix_cache: Any = None  # a PrefixCache when reuses_prefix
        if self.reuses_prefix:
            from araft_lc.runtime.prefix_cache import PrefixCache

            self.prefix_cache = PrefixCache(prefix_cache_entries)
        # static decode serves calls one at a time, beside a padded batcher
        self.batching = batching or ("continuous" if cpu and decode == "dynamic" else "padded")
        self.static: Any = None  # the StaticDecoder, made at the first static call
        self.batcher: Any = None
        if max_batch_size > 1 and self.batching == "continuous":
            from araft_lc.runtime.torch.continuous_batch import ContinuousBatcher

            use = functools.partial(_adapter_context, model, bool(adapters), merged=merged is not None)
            # The worker holds no reference to this object, so collecting it ends the worker.
            self.batcher = ContinuousBatcher(model, tokenizer, self.prefix_cache, self.lock, use, max_batch_size)
            weakref.finalize(self, self.batcher.close, False)
        elif max_batch_size > 1:
            from araft_lc.runtime.torch.padded_batch import Batcher

            self.batcher = Batcher(self._run_batch, max_batch_size, batch_wait_ms / 1000)

    # -- prompts -------------------------------------------------------------------------------

    @property
    def context_length(self) -> Optional[int]:
        """The positions the model takes (its config's ``max_position_embeddings``), if it says."""
        length = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        return length if isinstance(length, int) and length > 0 else None

    def adapter_context(self, adapter: Optional[str]) -> Any:
        """The context in which the model runs ``adapter`` (None: the base model)."""
        self.check_adapter(adapter)
        return _adapter_context(self.model, bool(self.adapters), adapter, merged=self.merged is not None)

    # -- generation ----------------------------------------------------------------------------

    def complete(self, ids: list[int], decoding: Decoding, deadline: Optional[float] = None) -> Completion:
        """Generate after prompt ``ids``: through the batcher, beside the calls that arrive with
        it; a sampled call runs alone beside the padded batcher, whose one ``generate`` would draw
        every row from one seed (the continuous batch gives each row its own)."""
        self.check_adapter(decoding.adapter)
        if self.batcher is not None and (decoding.temperature == 0 or self.batching == "continuous"):
            new_tokens = self.batcher.submit(ids, decoding, deadline)
        else:
            new_tokens = self._run_batch([Request(ids, decoding, deadline)])[0]
        return self.completion(ids, new_tokens, decoding)

    def stream(
        self, ids: list[int], decoding: Decoding, deadline: Optional[float] = None
    ) -> Iterator[Union[str, Completion]]:
        """Generate after prompt ``ids`` as text pieces, and last the ``Completion`` (its text:
        the tail not yet yielded). A piece that could begin a stop string is held back until it
        is decided, so no piece of a stop string is ever yielded."""
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._one_input(ids)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def work() -> int:
            with torch.inference_mode(), self.adapter_context(decoding.adapter):
                seed_sampling(decoding)
                options = generation_kwargs(decoding, self.tokenizer, self._cache_args(decoding, ids))
                out = self.model.generate(**inputs, **options, streamer=streamer, **deadline_criteria([deadline]))
                self._keep_cache(decoding.adapter, out)
                return out.sequences.shape[1] - len(ids)

        with self.lock:
            yield from streamed(work, streamer, ids, decoding.stop)

    def warm_up(self, adapter: Optional[str], lengths: Optional[Sequence[int]] = None) -> dict[int, float]:
        """Run the static decode path once per cache length (all by default), so that
        compilation happens now and not in a user's call: cache length -> seconds it took.

        Raises:
            ValueError: the engine decodes dynamically: nothing to compile.
        """
        import torch

        if self.decode != "static":
            raise ValueError('warm_up compiles the static decode path: build the model with decode="static"')

        def run(ids: list[int], new_tokens: int) -> None:
            decoding = Decoding(adapter, (), new_tokens, 0.0, 1.0, None)
            with self.lock, torch.inference_mode(), self.adapter_context(adapter):
                # min_new_tokens: an early EOS would skip the decode step that compiles
                out = self.model.generate(
                    **self._one_input(ids),
                    **generation_kwargs(
                        decoding, self.tokenizer, {**self._cache_args(decoding, ids), "min_new_tokens": new_tokens}
                    ),
                )
                self._keep_cache(adapter, out)

        return self._static_decoder().warm_up(run, lengths)

    def close(self) -> None:
        """Stop the continuous batch's worker (calls still waiting are answered with an error)."""
        if hasattr(self.batcher, "close"):
            self.batcher.close()

    def _run_batch(self, requests: list[Request]) -> list[list[int]]:
        """Generate for requests of one ``Decoding``: the new token ids of each.

        One request reuses the prefix cache; several are left-padded into one ``generate``,
        each row stopping on its own; trailing padding is cut from each row (so a row that
        ended with EOS, when EOS is also the padding token, counts one token less).
        """
        import torch

        decoding = requests[0].key
        with self.lock, torch.inference_mode(), self.adapter_context(decoding.adapter):
            seed_sampling(decoding)
            if len(requests) == 1:
                ids = requests[0].ids
                out = self.model.generate(
                    **self._one_input(ids),
                    **generation_kwargs(decoding, self.tokenizer, self._cache_args(decoding, ids)),
                    **deadline_criteria([requests[0].deadline]),
                )
                self._keep_cache(decoding.adapter, out)
                return [out.sequences[0, len(ids) :].tolist()]
            pad = self.tokenizer.pad_token_id
            width = max(len(r.ids) for r in requests)
            device = self.model.device
            input_ids = torch.tensor([[pad] * (width - len(r.ids)) + r.ids for r in requests], device=device)
            mask = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in requests], device=device)
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                **generation_kwargs(decoding, self.tokenizer),
                **deadline_criteria([r.deadline for r in requests]),
            )
        rows = []
        for row in out.sequences[:, width:].tolist():
            while row and row[-1] == pad:
                row.pop()
            rows.append(row)
        return rows

    def _one_input(self, ids: list[int]) -> dict[str, Any]:
        import torch

        input_ids = torch.tensor([ids], device=self.model.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def _cache_args(self, decoding: Decoding, ids: list[int]) -> dict[str, Any]:
        """generate() arguments for one row: its static cache (``decode="static"``, when the call
        fits one), else a cached prefix, else none."""
        if self.decode == "static":
            static = self._static_decoder()
            cache = static.cache_for(decoding.adapter, ids, decoding.max_new_tokens)
            if cache is not None:
                return {"cache": cache, **static.generation_options()}
        if self.prefix_cache is None:
            return {}
        past = self.prefix_cache.lookup(decoding.adapter, ids)
        return {"cache": past} if past is not None else {}

    def _keep_cache(self, adapter: Optional[str], out: Any) -> None:
        """Keep one row's cache after its call: in its static slot, else in the prefix cache."""
        if self.static is not None and self.static.keep(adapter, out.sequences[0].tolist(), out.cache):
            return
        if self.prefix_cache is not None:
            self.prefix_cache.store(adapter, out.sequences[0].tolist(), out.cache)

    def _static_decoder(self) -> Any:
        if self.static is None:
            from araft_lc.runtime.torch.static_decode import StaticDecoder

            self.static = StaticDecoder(
                self.model, self.static_cache_lengths, reuse_prefix=self.reuses_prefix, compile=self.compile_decode
            )
        return self.static
