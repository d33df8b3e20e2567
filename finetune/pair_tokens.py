"""Which tokens of a preference pair the DPO term counts.

``all`` is TRL's DPO: the log-ratio of a step sums over every one of its tokens. A rejected step
shares most of its tokens with the chosen one (``Thought:``, ``Action: [action:``,
``action_input:``, ``]``, the end of the turn). Before the two differ, those tokens cancel; after,
they stand in another context and do not: DPO pushes the rejected step's format down where it
follows a rejected decision, e.g. the ``Action:`` line after "So the answer is <a wrong name>."

``differing`` counts only the tokens where the two steps differ: the two token sequences are
aligned (``difflib``, no junk heuristic) and a token inside a matching block counts on neither
side. The ``sft`` loss type, where it is on, still covers the whole chosen step.

What it did to a trained model (fewer loops, more steps naming no tool) is measured in
docs/reproduction.md.
"""

from __future__ import annotations

import difflib
from typing import Any, Sequence

__all__ = [
    "PAIR_TOKENS",
    "PAIR_TOKEN_LOSSES",
    "differing_tokens",
    "with_differing_tokens",
    "preference_mask",
    "counted_tokens_collator",
    "differing_loss",
]

PAIR_TOKENS = ("all", "differing")
PAIR_TOKEN_LOSSES = ("sigmoid", "ipo", "sft")  # the loss types ``differing_loss`` computes


def differing_tokens(chosen: Sequence[int], rejected: Sequence[int]) -> tuple[list[int], list[int]]:
    """1 at each token of ``chosen`` and of ``rejected`` outside the blocks the two share, else 0."""
    keep_c, keep_r = [1] * len(chosen), [1] * len(rejected)
    for block in difflib.SequenceMatcher(None, chosen, rejected, autojunk=False).get_matching_blocks():
        keep_c[block.a : block.a + block.size] = [0] * block.size
        keep_r[block.b : block.b + block.size] = [0] * block.size
    return keep_c, keep_r


def with_differing_tokens(row: dict[str, Any]) -> dict[str, Any]:
    """A tokenised pair (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) with the masks of the
    tokens it counts, ``chosen_counted`` and ``rejected_counted``."""
    chosen, rejected = differing_tokens(row["chosen_ids"], row["rejected_ids"])
    return {**row, "chosen_counted": chosen, "rejected_counted": rejected}


def preference_mask(examples: Sequence[dict[str, Any]], width: int, max_length: Any) -> Any:
    """The counted tokens of a batch laid out as TRL's preference collator lays out the sequences:
    the chosen rows, then the rejected rows, each prompt then completion, cut to ``max_length``
    from the start and padded on the right to ``width``."""
    import torch

    mask = torch.zeros(2 * len(examples), width, dtype=torch.long)
    for side, offset in (("chosen", 0), ("rejected", len(examples))):
        for i, ex in enumerate(examples):
            row = [0] * len(ex["prompt_ids"]) + list(ex[f"{side}_counted"])
            row = row[:max_length] if max_length is not None else row
            mask[offset + i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return mask


def counted_tokens_collator(**kwargs: Any) -> Any:
    """TRL's preference collator (``kwargs`` are its own) that adds ``preference_mask``."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    class CountedTokensCollator(DataCollatorForPreference):
        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            out = super().torch_call(examples)
            out["preference_mask"] = preference_mask(examples, out["input_ids"].size(1), self.max_length)
            return out

    return CountedTokensCollator(**kwargs)


def differing_loss(trainer: Any, model: Any, inputs: dict[str, Any]) -> Any:
    """TRL's DPO loss (``trainer.loss_types`` among ``PAIR_TOKEN_LOSSES``) with the log-ratios summed
    over the counted tokens of ``inputs["preference_mask"]`` only; the reference is the starting
    adapter (``ref``), as in TRL. Logs TRL's reward and log-prob metrics."""
    import torch
    import torch.nn.functional as F
    from trl.models.utils import disable_gradient_checkpointing
    from trl.trainer.utils import use_adapter

    mode = "train" if trainer.model.training else "eval"
    counted = inputs["preference_mask"]
    completion = inputs["completion_mask"]
    kwargs = {
        k: v
        for k, v in inputs.items()
        if k not in ("completion_mask", "preference_mask", "ref_chosen_logps", "ref_rejected_logps")
    }
    kwargs["use_cache"] = False
    labels = inputs["input_ids"].masked_fill(completion == 0, -100)
    outputs = model(**kwargs, labels=labels, fused_lm_head=True)
    shifted_counted, shifted_completion = counted[..., 1:], completion[..., 1:]
    n = shifted_counted.size(1)
    chosen_n, rejected_n = shifted_counted.sum(dim=1).float().chunk(2, dim=0)  # tokens counted per step
    token_logps = outputs.log_probs[:, -n:]
    logps = (token_logps * shifted_counted).sum(dim=1)
    with torch.no_grad(), disable_gradient_checkpointing(trainer.model, trainer.args.gradient_checkpointing_kwargs):
        unwrapped = trainer.accelerator.unwrap_model(trainer.model)
        with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
            ref_outputs = trainer.model(**kwargs, labels=labels, fused_lm_head=True)
        ref_logps = (ref_outputs.log_probs[:, -n:] * shifted_counted).sum(dim=1)
    chosen_logps, rejected_logps = logps.chunk(2, dim=0)
    ref_chosen, ref_rejected = ref_logps.chunk(2, dim=0)
    chosen_ratio, rejected_ratio = chosen_logps - ref_chosen, rejected_logps - ref_rejected
    loss = 0.0
    for loss_type, weight in zip(trainer.loss_types, trainer.loss_weights, strict=True):
        if loss_type == "sigmoid":
            per_pair = -F.logsigmoid(trainer.beta * (chosen_ratio - rejected_ratio))
        elif loss_type == "ipo":  # TRL's IPO: the log-ratios per counted token
            per_pair = (
                chosen_ratio / chosen_n.clamp(min=1) - rejected_ratio / rejected_n.clamp(min=1) - 1 / (2 * trainer.beta)
            ) ** 2
        elif loss_type == "sft":  # the whole chosen step, not only where it differs
            chosen_tokens, _ = token_logps.chunk(2, dim=0)
            chosen_mask, _ = shifted_completion.chunk(2, dim=0)
            per_pair = -chosen_tokens[chosen_mask.bool()].mean().expand(chosen_logps.size(0))
        else:
            raise ValueError(
                f"pair_tokens differing does not compute loss type {loss_type!r}: use {', '.join(PAIR_TOKEN_LOSSES)}"
            )
        loss = loss + per_pair.mean() * weight
    chosen_rewards = trainer.beta * chosen_ratio.detach()
    rejected_rewards = trainer.beta * rejected_ratio.detach()
    gather, metrics = trainer.accelerator.gather, trainer._metrics[mode]
    metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
    metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
    metrics["rewards/accuracies"].append(gather((chosen_rewards > rejected_rewards).float()).mean().item())
    metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
    metrics["logps/chosen"].append(gather(chosen_logps.detach()).mean().item())
    metrics["logps/rejected"].append(gather(rejected_logps.detach()).mean().item())
    metrics["counted_tokens"].append(gather(chosen_n + rejected_n).mean().item())  # a pair's, both sides
    return loss
