"""Batch-1 decoding in a static KV cache: fixed shapes, so a compiled forward is reused.

``generate`` with a dynamic cache grows its tensors every token; a compiled forward cannot keep
up with that, and batch-1 decode on a GPU is then bound by Python and kernel launches
(benchmarks/RESULTS.md, "GPU decode", for the figures of transformers' static cache). But a static
cache sized to each call (transformers' own ``cache_implementation="static"``) recompiles for
every new length, and an agent's prompt grows every step. ``StaticDecoder`` therefore keeps one
``StaticCache`` per length bucket (powers of two by default), allocated once and reused across
calls, so the compiled graphs are one per bucket, not one per call; ``warm_up`` compiles them
ahead and says how long that took.

The prefix cache lives in the same tensors: each bucket remembers the token ids it holds, and a
new prompt that shares a prefix with them is cropped to it in place (no copy) so only its tail
is computed; a prompt that has grown into the next bucket has its prefix copied over once.
Stale key/values past the crop are never read: the causal mask hides every position after the
one being computed, and the next tokens overwrite them.

transformers compiles the decode step itself when the cache is static and the model is on a
GPU, but not a bitsandbytes 4-bit model (its quantizer says it is not compileable);
``compile=True`` asks for it anyway (bitsandbytes >= 0.45 registers its kernels with
``torch.compile``), and on a CPU too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from araft_lc.runtime.prefix_cache import common_prefix

__all__ = ["StaticDecoder", "default_buckets", "pick_bucket"]


def default_buckets(max_positions: int, smallest: int = 512) -> list[int]:
    """Powers of two from ``smallest`` up to, and ending at, the model's ``max_positions``."""
    out, n = [], smallest
    while n < max_positions:
        out.append(n)
        n *= 2
    return [*out, max_positions]


def pick_bucket(buckets: Sequence[int], needed: int) -> Optional[int]:
    """The smallest bucket holding ``needed`` tokens; None when even the largest does not."""
    return next((b for b in sorted(buckets) if b >= needed), None)


@dataclass
class _Slot:
    """One bucket's cache and the token ids (and adapter) its first ``len(ids)`` positions hold."""

    cache: Any
    adapter: Optional[str] = None
    ids: list[int] = field(default_factory=list)


class StaticDecoder:
    """Static KV caches, one per length bucket, for batch-1 ``generate`` calls of one model.

    Args:
        model: the transformers (or peft) model; its config sizes the caches.
        buckets: cache lengths; a call takes the smallest holding its prompt and new tokens,
            and a call that fits none is left to the dynamic path (``cache_for`` returns None).
        reuse_prefix: crop a bucket's cache to the prefix the new prompt shares with it,
            instead of computing the prompt from the start.
        compile: None: what transformers decides (compiled on a GPU, not for 4-bit models);
            True: compiled wherever the model runs, 4-bit included; False: never compiled.
        min_prefix: a shorter shared prefix is recomputed rather than reused.
        compile_config: a transformers ``CompileConfig`` for ``compile=True`` (default: its
            defaults, inductor with CUDA graphs).
    """

    def __init__(
        self,
        model: Any,
        buckets: Optional[Sequence[int]] = None,
        reuse_prefix: bool = True,
        compile: Optional[bool] = None,
        min_prefix: int = 16,
        compile_config: Any = None,
    ) -> None:
        self.model = model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._base = base
        self.buckets = sorted(buckets) if buckets else default_buckets(base.config.max_position_embeddings)
        self.reuse_prefix, self.compile, self.min_prefix = reuse_prefix, compile, min_prefix
        self._slots: dict[int, _Slot] = {}
        self.reused_tokens = 0  # prompt tokens not recomputed, over the decoder's life
        self.prompt_tokens = 0
        self.compile_config = self._compile_config(compile_config)
        quantizer = getattr(base, "hf_quantizer", None)
        if compile and quantizer is not None and not quantizer.is_compileable:
            base.hf_quantizer = _Compileable(quantizer)  # for this model only, and only the flag

    def _compile_config(self, config: Any) -> Any:
        # One object for every call: transformers rebuilds its compiled call when the config changes.
        if not self.compile:
            return None
        if config is None:
            from transformers import CompileConfig

            config = CompileConfig()
        config._compile_all_devices = True  # transformers' switch for devices it skips (CPU)
        return config

    @property
    def cache_shapes(self) -> dict[int, tuple[int, ...]]:
        """Bucket -> the shape of its key tensors, for every cache allocated so far."""
        return {
            b: tuple(s.cache.layers[0].keys.shape)
            for b, s in self._slots.items()
            if s.cache.layers and getattr(s.cache.layers[0], "is_initialized", False)
        }

    def generation_options(self) -> dict[str, Any]:
        """``GenerationConfig`` fields for a static-cache call: compiled or not, as configured."""
        if self.compile is False:
            return {"disable_compile": True}
        return {"compile_config": self.compile_config} if self.compile_config is not None else {}

    def cache_for(self, adapter: Optional[str], ids: Sequence[int], max_new_tokens: int) -> Optional[Any]:
        """The static cache for a call on ``ids`` with up to ``max_new_tokens`` new tokens: its
        bucket's, holding the longest prefix of ``ids`` that any bucket holds (cropped in place,
        or copied over once when the prompt has grown into a larger bucket), or None when the
        call fits no bucket."""
        from transformers import StaticCache

        bucket = pick_bucket(self.buckets, len(ids) + max_new_tokens)
        if bucket is None:
            return None
        self.prompt_tokens += len(ids)
        slot = self._slots.get(bucket)
        if slot is None:
            slot = self._slots[bucket] = _Slot(StaticCache(config=self._base.config, max_cache_len=bucket))
        source, keep = slot, 0
        if self.reuse_prefix:
            for other in self._slots.values():
                if other.adapter == adapter:
                    n = min(common_prefix(other.ids, ids), len(ids) - 1)  # at least one token to compute
                    if n > keep or (n == keep and other is slot):
                        source, keep = other, n
            if keep < self.min_prefix:
                source, keep = slot, 0
        held = int(slot.cache.get_seq_length())
        drop = held - (keep if source is slot else 0)
        if drop > 0:
            slot.cache.crop(-drop)  # a negative count: forget the tail, in place
        if source is not slot:
            _copy_prefix(source.cache, slot.cache, keep)
        slot.adapter, slot.ids = adapter, list(ids[:keep])
        self.reused_tokens += keep
        return slot.cache

    def keep(self, adapter: Optional[str], sequence: Sequence[int], cache: Any) -> bool:
        """Record what ``cache`` (one of ours, after ``generate``) now holds: the first
        ``get_seq_length()`` tokens of ``sequence``. False when ``cache`` is not one of ours."""
        for slot in self._slots.values():
            if slot.cache is cache:
                slot.adapter, slot.ids = adapter, list(sequence[: int(cache.get_seq_length())])
                return True
        return False

    def warm_up(
        self, run: Callable[[list[int], int], Any], buckets: Optional[Sequence[int]] = None, new_tokens: int = 4
    ) -> dict[int, float]:
        """Call ``run(ids, max_new_tokens)`` once in each bucket (all by default), with a prompt
        just long enough to land in it, so each compiles now rather than in a user's call.

        Returns:
            bucket -> seconds its call took (on a GPU, mostly compilation).
        """
        seconds = {}
        for bucket in buckets or self.buckets:
            smaller = max((b for b in self.buckets if b < bucket), default=0)
            ids = [self._base.config.bos_token_id or 1] * max(1, smaller + 1 - new_tokens)
            start = time.perf_counter()
            run(ids, new_tokens)
            seconds[bucket] = round(time.perf_counter() - start, 3)
        return seconds


def _copy_prefix(source: Any, target: Any, n: int) -> None:
    """Copy the first ``n`` positions of ``source``'s key/values into the (empty) ``target``, in
    place: the target's tensors keep their addresses, which compiled graphs depend on."""
    for src, dst in zip(source.layers, target.layers, strict=True):
        if not dst.is_initialized:
            dst.lazy_initialization(src.keys[:, :, :0], src.values[:, :, :0])
        dst.keys[:, :, :n].copy_(src.keys[:, :, :n])
        dst.values[:, :, :n].copy_(src.values[:, :, :n])
        dst.cumulative_length.fill_(n)


class _Compileable:
    """A quantizer as it is, except that it lets ``generate`` compile the model: transformers
    says bitsandbytes models are not compileable; bitsandbytes >= 0.45 registers its 4-bit ops
    with ``torch.compile`` (not verified here without a GPU: the GPU benchmark measures it)."""

    is_compileable = True

    def __init__(self, quantizer: Any) -> None:
        self._quantizer = quantizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._quantizer, name)
