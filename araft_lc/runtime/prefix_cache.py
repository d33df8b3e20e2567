"""Reuse of the key/values of a prompt prefix the model has already read.

Every agent step re-sends the same system prompt, and within a run the same question and
earlier steps; only the tail is new. ``PrefixCache`` keeps the KV caches of the last few
sequences the model read (prompt and output), keyed by their token ids and the active adapter.
For a new prompt it hands out a copy of the cache of the longest exact token prefix it shares
with one of them, so ``generate`` computes only the tokens after it. The check is on token ids,
so a changed prompt can never reuse a stale cache; at least one token is always left to compute.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Optional, Sequence

__all__ = ["PrefixCache", "common_prefix"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class PrefixCache:
    """KV caches of recent sequences, looked up by the longest shared token prefix.

    Args:
        max_entries: sequences kept (least recently used dropped first).
        min_tokens: a shorter shared prefix is not worth a copy.
    """

    def __init__(self, max_entries: int = 4, min_tokens: int = 16) -> None:
        self.max_entries, self.min_tokens = max_entries, min_tokens
        self._entries: OrderedDict[tuple[Optional[str], tuple[int, ...]], Any] = OrderedDict()
        self.reused_tokens = 0  # prompt tokens not recomputed, over the model's life
        self.prompt_tokens = 0

    def lookup(self, adapter: Optional[str], ids: Sequence[int]) -> Optional[Any]:
        """A cache (a copy, cropped) covering the longest usable prefix of ``ids``, or None."""
        self.prompt_tokens += len(ids)
        best, best_key = 0, None
        for key in self._entries:
            if key[0] == adapter:
                n = min(common_prefix(key[1], ids), len(ids) - 1)
                if n > best:
                    best, best_key = n, key
        if best_key is None or best < self.min_tokens:
            return None
        self._entries.move_to_end(best_key)
        cache = copy.deepcopy(self._entries[best_key])
        extra = cache.get_seq_length() - best
        if extra > 0:
            cache.crop(-extra)  # transformers 5: a negative count of tokens to drop
        self.reused_tokens += best
        return cache

    def store(self, adapter: Optional[str], ids: Sequence[int], cache: Any) -> None:
        """Keep ``cache``, which covers the first ``cache.get_seq_length()`` tokens of ``ids``."""
        if cache is None or not getattr(cache, "is_croppable", True):
            return
        n = cache.get_seq_length()
        self._entries[(adapter, tuple(ids[:n]))] = cache
        self._entries.move_to_end((adapter, tuple(ids[:n])))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
