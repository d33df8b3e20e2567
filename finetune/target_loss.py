"""The SFT loss with the LM head on the target tokens only.

A trajectory record is mostly context: the system prompt, the question and the observations carry
no loss, and on SmolLM2's records about two tokens in three are such context
(``benchmarks/sft_throughput_bench.py``). TRL's SFTTrainer projects every position through the LM
head (49,152 columns for SmolLM2), in chunks, and also takes each position's entropy for its
logs; on a CPU that is its choice for every device without Triton. Here the backbone runs as
before and only the positions whose next token is a target are projected: the same loss, its
gradient the same up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["TargetLoss", "target_loss"]


@dataclass(frozen=True)
class TargetLoss:
    """The loss and what the logs want of it: the targets counted and how many the model's top
    token already got right (tensors)."""

    loss: Any
    targets: Any
    top1: Any


def _causal_lm(model: Any) -> Any:
    """The causal LM under PEFT's wrapper (the module with ``model`` and ``lm_head``)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def target_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Optional[Any] = None) -> TargetLoss:
    """The mean next-token NLL over the positions whose label is not -100.

    ``inputs`` holds ``input_ids``, ``labels`` (-100 where no loss falls) and, as the collator
    gives them, ``attention_mask`` or ``position_ids``. ``num_items_in_batch`` (the targets of
    the whole accumulated batch, as the Trainer counts them) divides the sum when given, so
    gradient accumulation weighs every target alike; else the targets of this batch do.
    """
    import torch

    lm = _causal_lm(model)
    labels = inputs["labels"][:, 1:]
    kwargs = {k: v for k, v in inputs.items() if k not in ("labels", "use_cache")}
    hidden = lm.model(**kwargs, use_cache=False).last_hidden_state[:, :-1]
    mask = labels != -100
    # a batch with no target still returns a loss tied to the graph, so backward() has work to do
    logits = lm.get_output_embeddings()(hidden[mask])
    targets = labels[mask]
    nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
    count = mask.sum()
    divisor = count.clamp(min=1) if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
    with torch.no_grad():
        top1 = (logits.argmax(-1) == targets).sum()
    return TargetLoss(nll / divisor.to(nll.device), count, top1)
