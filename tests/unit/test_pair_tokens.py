"""finetune.pair_tokens: DPO counts only the tokens where the chosen and rejected steps differ."""

from collections import defaultdict
from types import SimpleNamespace

import pytest

from finetune.pair_tokens import differing_tokens, with_differing_tokens

pytest.importorskip("trl")


def test_the_tokens_both_steps_share_count_on_neither_side():
    # the same format around another search, and a rejected step one token longer at the end
    assert differing_tokens([1, 2, 3, 4, 5, 6], [1, 2, 9, 4, 5, 6, 7]) == ([0, 0, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0, 1])
    assert differing_tokens([1, 2], [1, 2]) == ([0, 0], [0, 0])
    assert differing_tokens([5], [6, 7]) == ([1], [1, 1])


def _policy_and_reference(tiny_llama, adapters):
    """The tiny Llama with two different LoRA adapters, the policy ``default`` and the reference
    ``ref``, and TRL's fused head, as DPOTrainer sets a model up."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), adapters["a"])
    model.load_adapter(adapters["b"], adapter_name="ref")
    model.set_adapter("default")
    add_fused_lm_head(model.get_base_model())
    return model.eval()


def _summed_logps(model, adapter, ids, counted):
    """log p(token) summed over the counted tokens of one unpadded sequence, from plain logits."""
    import torch
    from trl.trainer.utils import use_adapter

    with torch.no_grad(), use_adapter(model, adapter):
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    logps = torch.log_softmax(logits[:-1].float(), dim=-1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return float((logps * torch.tensor(counted[1:], dtype=logps.dtype)).sum())


def test_the_dpo_term_sums_the_log_ratios_over_the_differing_tokens_only(tiny_llama, adapters):
    import math

    import torch

    from finetune.pair_tokens import counted_tokens_collator, differing_loss

    model = _policy_and_reference(tiny_llama, adapters)
    # two pairs of different lengths, so padding and the layout of the batch are exercised
    pairs = [
        with_differing_tokens(
            {"prompt_ids": [1, 5, 6, 7], "chosen_ids": [8, 9, 10, 11, 2], "rejected_ids": [8, 12, 10, 11, 2]}
        ),
        with_differing_tokens(
            {"prompt_ids": [1, 20, 21], "chosen_ids": [22, 23, 2], "rejected_ids": [22, 24, 25, 26, 2]}
        ),
    ]
    inputs = counted_tokens_collator(pad_token_id=0).torch_call(pairs)
    trainer = SimpleNamespace(
        model=model,
        beta=0.1,
        loss_types=["sigmoid"],
        loss_weights=[1.0],
        accelerator=SimpleNamespace(unwrap_model=lambda m: m, gather=lambda t: t),
        args=SimpleNamespace(gradient_checkpointing_kwargs=None),
        _metrics={"eval": defaultdict(list)},
    )
    with torch.no_grad():
        loss = differing_loss(trainer, model, inputs)

    expected = []
    for pair in pairs:
        ratio = {}
        for side in ("chosen", "rejected"):
            ids = pair["prompt_ids"] + pair[f"{side}_ids"]
            counted = [0] * len(pair["prompt_ids"]) + pair[f"{side}_counted"]
            ratio[side] = _summed_logps(model, "default", ids, counted) - _summed_logps(model, "ref", ids, counted)
        expected.append(-math.log(1 / (1 + math.exp(-0.1 * (ratio["chosen"] - ratio["rejected"])))))
    assert float(loss) == pytest.approx(sum(expected) / len(expected), abs=1e-5)
    assert float(loss) != pytest.approx(math.log(2), abs=1e-4)  # the two adapters differ: a real margin
    # one differing token on each side of the first pair, one against three in the second: 2 and 4 a pair
    assert trainer._metrics["eval"]["counted_tokens"] == [pytest.approx(3.0)]
