"""finetune.target_loss: the LM head on target positions only is the model's own loss, and SFT
through it trains the adapter TRL's own loss trains."""

import json

import pytest
from helpers import CPU_TRAINING, golden_sft_records

from araft import main

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def lora(tiny_llama):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False),
    )  # B != 0: the LoRA path carries gradient
    return model.train()


def _batch():
    import torch

    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 200, (2, 12), generator=g)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0  # the second row is padded
    labels = ids.clone()
    labels[:, :5] = -100  # the prompt
    labels[1, 9:] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_the_loss_and_its_gradient_are_the_models_own(lora):
    import torch

    from finetune.target_loss import target_loss

    lora.zero_grad()
    own = lora(**_batch()).loss
    own.backward()
    want = _grads(lora)
    lora.zero_grad()
    out = target_loss(lora, _batch())
    out.loss.backward()
    got = _grads(lora)
    assert torch.allclose(out.loss, own, atol=1e-6)
    assert int(out.targets) == 7 + 4 and want.keys() == got.keys() and len(got) > 0
    assert all(torch.allclose(got[n], want[n], atol=1e-6) for n in want)
    lora.zero_grad()


def test_the_accumulated_count_divides_and_an_empty_batch_is_a_zero(lora):
    import torch

    from finetune.target_loss import target_loss

    batch = _batch()
    per_batch = target_loss(lora, batch).loss
    assert torch.allclose(target_loss(lora, batch, num_items_in_batch=22).loss, per_batch * 11 / 22, atol=1e-6)
    batch["labels"][:] = -100
    empty = target_loss(lora, batch)
    empty.loss.backward()  # no target, no error: a zero that still belongs to the graph
    assert float(empty.loss) == 0.0 and int(empty.targets) == 0
    lora.zero_grad()


def test_sft_trains_the_adapter_trls_own_loss_trains(tiny_llama, tmp_path, monkeypatch):
    """Three steps of two records with the head on target positions, and the same with TRL's
    SFTTrainer as it is: the same adapter, to float rounding."""
    from safetensors.torch import load_file

    import finetune.sft

    data = tmp_path / "sft.jsonl"
    golden_sft_records(data)
    common = [
        "train",
        "sft",
        "--data",
        str(data),
        "--model",
        str(tiny_llama),
        *CPU_TRAINING,
        "--warmup_ratio",
        "0",
        "--gradient_accumulation_steps",
        "2",
        "--per_device_train_batch_size",
        "1",
        "--lora_dropout",
        "0",
        "--num_train_epochs",
        "3",
        "--logging_steps",
        "1",
    ]
    assert main([*common, "--output_dir", str(tmp_path / "targets")]) == 0
    monkeypatch.setattr(finetune.sft, "_targets_only", lambda base: base)
    assert main([*common, "--output_dir", str(tmp_path / "trl")]) == 0
    ours, theirs = (load_file(tmp_path / name / "adapter_model.safetensors") for name in ("targets", "trl"))
    assert ours.keys() == theirs.keys()
    moved = [k for k in ours if "lora_B" in k and float(ours[k].abs().sum()) > 0]
    assert moved and all(float((ours[k] - theirs[k]).abs().max()) < 1e-4 for k in ours)
    logs = [json.loads(line) for line in (tmp_path / "targets" / "log.jsonl").read_text().splitlines()]
    assert any("mean_token_accuracy" in row for row in logs)
