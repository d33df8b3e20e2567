"""LoRA merged into the base weights for inference, when one adapter is all a model runs.

An unmerged adapter adds two small matmuls (and, eagerly, Python dispatch) to every adapted
layer on every token; merged, ``W + scale * B @ A`` is one matmul. peft's ``merge_adapter``
keeps the adapter weights and the wrapper, so the model stays a ``PeftModel``; the merge is
made once, with ``safe_merge`` (refused if it yields NaNs). Merged and unmerged outputs agree
to rounding: ``x @ (W + BA)`` and ``x @ W + (x @ A) @ B`` add in a different order.
"""

from __future__ import annotations

from typing import Any

__all__ = ["merge_once", "merged_adapters"]


def merged_adapters(model: Any) -> set[str]:
    """The adapters merged into ``model``'s layers (empty for a model without LoRA)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {name for m in model.modules() if isinstance(m, BaseTunerLayer) for name in m.merged_adapters}


def merge_once(model: Any, adapter: str) -> None:
    """Merge ``adapter`` into ``model`` (a ``PeftModel``) unless it already is.

    Raises:
        ValueError: another adapter is merged already.
    """
    if getattr(model, "_araft_merged", None) == adapter:  # every call asks: answer without a walk
        return
    merged = merged_adapters(model)
    if adapter in merged:
        model._araft_merged = adapter
        return
    if merged:
        raise ValueError(f"cannot merge adapter {adapter!r}: {sorted(merged)} is merged already")
    model.set_adapter(adapter)
    model.base_model.merge_adapter([adapter], safe_merge=True)
    model._araft_merged = adapter
