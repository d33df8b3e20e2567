"""Continuous batching: one decode loop that concurrent calls join and leave between steps.

``araft_lc.runtime.torch.padded_batch`` runs a padded ``generate`` per batch: every row's prompt is computed
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

import threading
import time
from typing import Any, Callable, ContextManager, Optional

from araft_lc.runtime.batch_loop import BatchLoop, Row
from araft_lc.runtime.decoding import draw_token
from araft_lc.runtime.request import Request
from araft_lc.runtime.torch.batch_kv import BatchKV, full_attention_only

__all__ = ["ContinuousBatcher"]


class ContinuousBatcher(BatchLoop):
    """Generation for concurrent requests in one running batch of a transformers model (the
    scheduling is ``araft_lc.runtime.batch_loop.BatchLoop``'s).

    Args:
        model: a transformers causal LM (a peft model with adapters works too).
        tokenizer: its tokenizer (EOS, stop strings).
        prefix_cache: an ``araft_lc.runtime.prefix_cache.PrefixCache``, or None to compute whole prompts.
        lock: held around each forward, shared with the model's other callers.
        use_adapter: ``use_adapter(name)`` is the context in which a forward runs that adapter.
        max_batch: rows decoded together at most.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prefix_cache: Any,
        lock: threading.Lock,
        use_adapter: Callable[[Optional[str]], ContextManager[Any]],
        max_batch: int = 8,
    ) -> None:
        self.model, self.prefix_cache, self.lock, self.use_adapter = model, prefix_cache, lock, use_adapter
        if not full_attention_only(model.config):
            raise ValueError("continuous batching pads full-attention caches only; this model has other layers")
        if prefix_cache is not None:  # every active row's last sequence, and the prompts being read
            prefix_cache.max_entries = max(prefix_cache.max_entries, 2 * max_batch)
        self._kv: Optional[BatchKV] = None
        super().__init__(tokenizer, max_batch, "araft-continuous-batcher")

    def _join(self, request: Request) -> Optional[Row]:
        """Prefill one request from its cached prefix; it joins the batch unless already done."""
        import torch

        adapter = request.key.adapter
        row = self._new_row(request, self.model.device)
        with self.lock, torch.inference_mode(), self.use_adapter(adapter):
            start = time.perf_counter()
            past = self.prefix_cache.lookup(adapter, row.ids) if self.prefix_cache is not None else None
            if past is None:
                from transformers import DynamicCache

                past = DynamicCache(config=self.model.config)
            done = past.get_seq_length()
            n = len(row.ids)
            out = self.model(
                input_ids=torch.tensor([row.ids[done:]], device=self.model.device),
                attention_mask=torch.ones(1, n, dtype=torch.long, device=self.model.device),
                position_ids=torch.arange(done, n, device=self.model.device)[None],
                cache=past,
                use_cache=True,
                logits_to_keep=1,
            )
            if self.prefix_cache is not None:  # the prompt, for the calls that share its start
                self.prefix_cache.store(adapter, row.ids, past)
            self.stats["prefill_s"] += time.perf_counter() - start
            self.stats["prefill_tokens"] += n - done
        if self._append(row, draw_token(out.logits[0, -1], request.key, row.generator)):
            self._keep(row, past)
            return None
        if self._kv is None:
            self._kv = BatchKV(past, self.max_batch)
        else:
            self._kv.add(past)  # the batch is unchanged if this fails
        return row

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
                out = self.model(
                    input_ids=last, attention_mask=mask, position_ids=positions, cache=kv.cache, use_cache=True
                )
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
        for i, (row, token) in enumerate(zip(self._rows, tokens, strict=True)):
            try:
                if self._append(row, token):
                    ended.append((i, None))
            except Exception as e:  # this row only
                ended.append((i, e))
        for i, error in reversed(ended):  # the last first, so the indices stay valid
            past = kv.remove(i)  # if this fails, the row is still in the batch and fails with it
            row = self._rows.pop(i)
            if error is None:
                self._keep(row, past)
            else:
                row.request.future.set_exception(error)
        if not self._rows:
            self._kv = None

    def _fail_batch(self, error: Exception) -> None:
        super()._fail_batch(error)
        self._kv = None

    def _keep(self, row: Row, past: Any) -> None:
        """Answer ``row`` and keep its key/values (all but its last token) for the run's next call."""
        self._leave(row)
        if self.prefix_cache is not None:
            with self.lock:
                self.prefix_cache.store(row.request.key.adapter, row.ids, past)
