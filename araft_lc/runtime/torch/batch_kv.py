"""The key/values of a running batch: each row's own cache, left-padded to one length, in place.

A row's tokens are always the last columns of its cache row, so one decode step appends one
column for every row, and the attention mask (zeros over the padding) and each row's position
(its own token count) say which columns are its own. Rows are added and removed between steps;
a removed row's cache comes back unpadded, for the prefix cache.

The columns live in a window of a buffer allocated with room on both sides, one per layer for
keys and one for values: a step writes its column after the window and the model reads views
of it, where a ``DynamicCache`` would copy the whole batch into a new tensor on every step (a
quarter of a gigabyte at 8 rows of 700 tokens in SmolLM2-135M). A longer row that joins widens
the window to the left, a row that leaves narrows it; the buffer is copied only when the window
outgrows it, and then with ``room`` columns to spare on each side again.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

__all__ = ["BatchKV", "full_attention_only"]


def full_attention_only(config: Any) -> bool:
    """Whether a model's cache is plain full-attention layers (what rows can be padded in)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=config).layers)


class _Window:
    """Which part of the buffers holds the batch: rows ``[0, rows)``, columns ``[start, end)``."""

    def __init__(self, rows: int, start: int, end: int) -> None:
        self.rows, self.start, self.end = rows, start, end

    @property
    def width(self) -> int:
        return self.end - self.start


class _WindowLayer(CacheLayerMixin):
    """One layer's key/values, as views of the window of its buffers (the window is shared)."""

    is_sliding = False
    is_croppable = False  # the prefix cache keeps removed rows, never the batch
    # allocated at construction (by BatchKV), never None as in a lazily initialised layer
    keys: torch.Tensor
    values: torch.Tensor

    def __init__(self, window: _Window, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.window, self.keys, self.values = window, keys, values
        self.device, self.is_initialized = keys.device, True

    def lazy_initialization(self, key_states: Any, value_states: Any) -> None:  # allocated by BatchKV
        pass

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Write the step's columns after the window (``BatchKV.advanced`` takes them in)."""
        w = self.window
        end = w.end + key_states.shape[-2]
        self.keys[: w.rows, :, w.end : end] = key_states
        self.values[: w.rows, :, w.end : end] = value_states
        return self.keys[: w.rows, :, w.start : end], self.values[: w.rows, :, w.start : end]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.window.width + query_length, 0

    def get_seq_length(self) -> int:
        return self.window.width

    def get_max_length(self) -> int:
        return -1


class BatchKV:
    """The key/values of several rows in one ``Cache`` and the attention mask of their padding.

    Args:
        first: the batch-1 cache of the first row (copied, not changed).
        max_rows: rows the buffers hold before they are copied into taller ones.
        room: spare columns on each side of the window when the buffers are (re)allocated.
    """

    @torch.inference_mode()
    def __init__(self, first: Any, max_rows: int = 8, room: int = 256) -> None:
        self.room = room
        n = first.get_seq_length()
        self._window = _Window(0, room, room + n)
        # the cache's layers, as the _WindowLayers they are (Cache types its list as any layer's)
        self._layers = [self._new_layer(layer.keys, layer.values, max_rows, room + n + room) for layer in first.layers]
        self.cache = Cache(layers=list(self._layers))
        self.mask = torch.ones(0, n, dtype=torch.long, device=first.layers[0].keys.device)
        self.add(first)

    def _new_layer(self, keys: Any, values: Any, rows: int, columns: int) -> _WindowLayer:
        """A layer with empty buffers shaped for ``rows`` rows of ``columns`` columns like ``keys``."""
        return _WindowLayer(
            self._window,
            torch.empty(rows, keys.shape[1], columns, keys.shape[3], dtype=keys.dtype, device=keys.device),
            torch.empty(rows, values.shape[1], columns, values.shape[3], dtype=values.dtype, device=values.device),
        )

    def _reallocate(self, rows: int, left: int, right: int) -> None:
        """Copy the window into new buffers of ``rows`` rows, ``left`` and ``right`` free columns beside it."""
        w = self._window
        # every new buffer first, then the swap: a failure (out of memory) leaves the batch as it was
        layers = [self._new_layer(layer.keys, layer.values, rows, left + w.width + right) for layer in self._layers]
        for old, new in zip(self._layers, layers, strict=True):
            new.keys[: w.rows, :, left : left + w.width] = old.keys[: w.rows, :, w.start : w.end]
            new.values[: w.rows, :, left : left + w.width] = old.values[: w.rows, :, w.start : w.end]
        for old, new in zip(self._layers, layers, strict=True):
            old.keys, old.values = new.keys, new.values
        w.start, w.end = left, left + w.width

    @torch.inference_mode()
    def add(self, past: Any) -> None:
        """Append a row whose batch-1 cache is ``past`` (copied, not changed)."""
        w, n = self._window, past.get_seq_length()
        buffer = self._layers[0].keys
        if w.rows == buffer.shape[0] or n - w.width > w.start:
            self._reallocate(max(buffer.shape[0], w.rows + 1), max(n - w.width, self.room), self.room)
        start = min(w.start, w.end - n)
        for layer, new in zip(self._layers, past.layers, strict=True):
            for buffer, row in ((layer.keys, new.keys), (layer.values, new.values)):
                buffer[: w.rows, :, start : w.start] = 0  # the other rows' padding where the window widens
                buffer[w.rows, :, start : w.end - n] = 0
                buffer[w.rows, :, w.end - n : w.end] = row[0]
        width = w.end - start
        mask = torch.zeros(w.rows + 1, width, dtype=self.mask.dtype, device=self.mask.device)
        mask[: w.rows, width - self.mask.shape[1] :] = self.mask
        mask[w.rows, width - n :] = 1
        self.mask, w.start, w.rows = mask, start, w.rows + 1

    @torch.inference_mode()
    def next_mask_and_positions(self) -> tuple[Any, Any]:
        """The attention mask and position ids of a step that feeds one token per row."""
        w = self._window
        if w.end == self._layers[0].keys.shape[2]:  # no column left for the step
            self._reallocate(self._layers[0].keys.shape[0], self.room, self.room)
        mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        return mask, self.mask.sum(dim=1, keepdim=True)

    def advanced(self, mask: Any) -> None:
        """The step with ``mask`` (from ``next_mask_and_positions``) has run: its column is in."""
        self.mask = mask
        self._window.end += 1

    def remove(self, i: int) -> Any:
        """Take row ``i`` out; its cache, without padding, as a batch-1 ``DynamicCache``."""
        from transformers import DynamicCache

        w = self._window
        own = int(self.mask[i].sum())
        # DynamicCache copies what it is given (its update concatenates): the row outlives the buffers,
        # and, made outside inference mode, it is an ordinary tensor like any other prefix cache entry
        row = DynamicCache(
            [
                (layer.keys[i : i + 1, :, w.end - own : w.end], layer.values[i : i + 1, :, w.end - own : w.end])
                for layer in self._layers
            ]
        )
        with torch.inference_mode():
            for layer in self._layers:  # the rows after it move up one, in order
                for buffer in (layer.keys, layer.values):
                    for j in range(i, w.rows - 1):
                        buffer[j, :, w.start : w.end] = buffer[j + 1, :, w.start : w.end]
        keep = [j for j in range(w.rows) if j != i]
        w.rows -= 1
        if keep:
            width = int(self.mask[keep].sum(dim=1).max())  # drop columns that are padding in every row left
            self.mask = self.mask[keep][:, -width:]
            w.start = w.end - width
        else:
            self.mask = self.mask[keep]
        return row

    def __len__(self) -> int:
        return self._window.rows
