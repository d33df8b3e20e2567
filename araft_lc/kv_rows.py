"""The key/values of a running batch: each row's own cache, left-padded to one length.

A row's tokens are always the last columns of its cache row, so one decode step appends one
column for every row, and the attention mask (zeros over the padding) and each row's position
(its own token count) say which columns are its own. Rows are added and removed between steps;
a removed row's cache comes back unpadded, for the prefix cache.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BatchKV", "full_attention_only"]


def full_attention_only(config: Any) -> bool:
    """Whether a model's cache is plain full-attention layers (what rows can be padded in)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=config).layers)


def _left_pad(t: Any, width: int) -> Any:
    """``t`` (batch, heads, length, dim) with zero columns in front, to ``width`` columns."""
    import torch

    missing = width - t.shape[-2]
    if missing == 0:
        return t
    pad = torch.zeros(*t.shape[:-2], missing, t.shape[-1], dtype=t.dtype, device=t.device)
    return torch.cat([pad, t], dim=-2)


def _left_pad_mask(mask: Any, width: int) -> Any:
    import torch

    missing = width - mask.shape[1]
    if missing == 0:
        return mask
    return torch.cat([mask.new_zeros(mask.shape[0], missing), mask], dim=1)


class BatchKV:
    """A ``DynamicCache`` of several rows and the attention mask of their padding.

    Args:
        first: the batch-1 cache of the first row (copied, not changed).
    """

    def __init__(self, first: Any) -> None:
        import torch
        from transformers import DynamicCache

        # DynamicCache copies what it is given (its update concatenates)
        self.cache = DynamicCache([(layer.keys, layer.values) for layer in first.layers])
        self.mask = torch.ones(1, first.get_seq_length(), dtype=torch.long, device=first.layers[0].keys.device)

    def add(self, past: Any) -> None:
        """Append a row whose batch-1 cache is ``past`` (copied, not changed)."""
        import torch

        width = max(self.mask.shape[1], past.get_seq_length())
        # every new tensor first, then the swap: a failure (out of memory) leaves the batch as it was
        merged = [(torch.cat([_left_pad(layer.keys, width), _left_pad(new.keys, width)]),
                   torch.cat([_left_pad(layer.values, width), _left_pad(new.values, width)]))
                  for layer, new in zip(self.cache.layers, past.layers)]
        ones = torch.ones(1, past.get_seq_length(), dtype=self.mask.dtype, device=self.mask.device)
        mask = torch.cat([_left_pad_mask(self.mask, width), _left_pad_mask(ones, width)])
        for layer, (keys, values) in zip(self.cache.layers, merged):
            layer.keys, layer.values = keys, values
        self.mask = mask

    def next_mask_and_positions(self) -> tuple[Any, Any]:
        """The attention mask and position ids of a step that feeds one token per row."""
        import torch

        mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        return mask, self.mask.sum(dim=1, keepdim=True)

    def advanced(self, mask: Any) -> None:
        """The step with ``mask`` (from ``next_mask_and_positions``) has run: its column is in."""
        self.mask = mask

    def remove(self, i: int) -> Any:
        """Take row ``i`` out; its cache, without padding, as a batch-1 ``DynamicCache``."""
        import torch
        from transformers import DynamicCache

        own = int(self.mask[i].sum())
        row = DynamicCache([(layer.keys[i:i + 1, :, -own:], layer.values[i:i + 1, :, -own:]) for layer in self.cache.layers])
        keep = [j for j in range(self.mask.shape[0]) if j != i]
        if keep:
            width = int(self.mask[keep].sum(dim=1).max())  # drop columns that are padding in every row left
            index = torch.tensor(keep, device=self.mask.device)
            for layer in self.cache.layers:
                layer.keys = layer.keys.index_select(0, index)[:, :, -width:].contiguous()
                layer.values = layer.values.index_select(0, index)[:, :, -width:].contiguous()
            self.mask = self.mask.index_select(0, index)[:, -width:]
        return row

    def __len__(self) -> int:
        return int(self.mask.shape[0])
