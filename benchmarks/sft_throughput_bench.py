"""Where an SFT step's time goes on the CPU, and what each way of cutting it buys, side by side.

The shipped adapter's recipe (SmolLM2-135M, fp32, LoRA r=16 alpha=32 on every linear layer,
dropout 0.05, one record a forward pass, four per optimiser step) on the first ``--records``
records of ``--data``, tokenised as ``araft train`` tokenises them. Each variant runs the same
records in the same order from the same start, ``--rounds`` times interleaved (the machine is
shared: the median round counts):

- ``trl``: the LM head as TRL's SFTTrainer runs it on a CPU (``add_fused_lm_head``: every
  position, in chunks, with each position's entropy and top-1 for its logs), batch 1: the step
  ``araft train sft`` took until now;
- ``targets``: the LM head on target positions only (``finetune.target_loss``), batch 1;
- ``bucketed4``: ``targets``, four records of like length a forward pass (sorted by length), padded;
- ``packed4``: ``targets``, four records in one row, positions restarting (padding-free);
- ``no_dropout``: ``targets`` with LoRA dropout 0 (another recipe: it changes what is learned);
- ``bf16``: ``targets`` under bf16 autocast (another recipe: it changes the numbers, and pays
  only where the CPU multiplies bf16 natively).

It also splits a step with the LM head on every position (plain, not chunked) into its parts
(backbone forward, LM head and loss, backward, optimiser) on the first 8 records and counts the
records' tokens: targets, context, and padding had they been batched
four at a time in their own order, on the first 400 records. Times are wall and CPU seconds (the
machine is shared: CPU time moves less with what runs beside it).

    python -m benchmarks.sft_throughput_bench --data runs/q600/sft.jsonl [--records 16] [--rounds 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from typing import Any

from benchmarks.common import emit, stamp

VARIANTS = ("trl", "targets", "bucketed4", "packed4", "no_dropout", "bf16")


def _model(dropout: float, fused: bool) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from araft_lc.chat.presets import smollm2_path

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(smollm2_path()), dtype=torch.float32)
    base.config.use_cache = False
    if fused:
        from trl.trainer.utils import add_fused_lm_head

        add_fused_lm_head(base, outputs=("log_probs", "entropy", "is_top1"))
    model = get_peft_model(
        base,
        LoraConfig(
            r=16, lora_alpha=32, lora_dropout=dropout, target_modules="all-linear", bias="none", task_type="CAUSAL_LM"
        ),
    )
    model.train()
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.01)


def _labels(t: dict[str, list[int]]) -> list[int]:
    return [i if m else -100 for i, m in zip(t["input_ids"], t["assistant_masks"], strict=True)]


def _batches(records: list[dict[str, list[int]]], variant: str) -> list[list[dict[str, Any]]]:
    """Optimiser steps of four records each, as forward passes of tensors."""
    import torch

    steps = []
    if variant == "bucketed4":  # length-bucketed: the records in order of length, four at a time
        records = sorted(records, key=lambda t: len(t["input_ids"]))
    for i in range(0, len(records) - 3, 4):
        group = records[i : i + 4]
        if variant == "bucketed4":
            n = max(len(t["input_ids"]) for t in group)
            pad = [n - len(t["input_ids"]) for t in group]
            steps.append(
                [
                    {
                        "input_ids": torch.tensor([t["input_ids"] + [0] * p for t, p in zip(group, pad, strict=True)]),
                        "attention_mask": torch.tensor(
                            [[1] * len(t["input_ids"]) + [0] * p for t, p in zip(group, pad, strict=True)]
                        ),
                        "labels": torch.tensor([_labels(t) + [-100] * p for t, p in zip(group, pad, strict=True)]),
                    }
                ]
            )
        elif variant == "packed4":
            # a record's first token is never predicted from the one before it
            labels = [x for t in group for x in [-100, *_labels(t)[1:]]]
            steps.append(
                [
                    {
                        "input_ids": torch.tensor([[x for t in group for x in t["input_ids"]]]),
                        "position_ids": torch.tensor([[p for t in group for p in range(len(t["input_ids"]))]]),
                        "labels": torch.tensor([labels]),
                    }
                ]
            )
        else:
            steps.append(
                [{"input_ids": torch.tensor([t["input_ids"]]), "labels": torch.tensor([_labels(t)])} for t in group]
            )
    return steps


def _run(variant: str, records: list[dict[str, list[int]]], split: bool = False) -> dict[str, Any]:
    import torch

    from finetune.target_loss import target_loss

    model, optimizer = _model(0.0 if variant == "no_dropout" else 0.05, fused=variant == "trl")
    steps = _batches(records, variant)
    parts = {"forward": 0.0, "head_and_loss": 0.0, "backward": 0.0, "optimizer": 0.0}
    losses = []  # per optimiser step: its passes' losses add up to the step's
    start, cpu = time.perf_counter(), time.process_time()
    for passes in steps:
        targets = sum(int((p["labels"][:, 1:] != -100).sum()) for p in passes)
        losses.append(0.0)
        for inputs in passes:
            t0 = time.perf_counter()
            if split:  # a step with the LM head on every position, timed in its parts
                lm = model.get_base_model()
                hidden = lm.model(input_ids=inputs["input_ids"]).last_hidden_state[:, :-1]
                t1 = time.perf_counter()
                logits = lm.get_output_embeddings()(hidden)
                loss = (
                    torch.nn.functional.cross_entropy(
                        logits.flatten(0, 1), inputs["labels"][:, 1:].flatten(), reduction="sum"
                    )
                    / targets
                )
                t2 = time.perf_counter()
                parts["forward"] += t1 - t0
                parts["head_and_loss"] += t2 - t1
            else:
                context = torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16" else contextlib.nullcontext()
                with context:
                    if variant == "trl":
                        loss = model(**inputs, fused_lm_head=True, num_items_in_batch=targets).loss
                    else:
                        loss = target_loss(model, inputs, targets).loss
                t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            parts["backward"] += t3 - t2
            losses[-1] += float(loss.detach())
        t4 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        parts["optimizer"] += time.perf_counter() - t4
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = 4 * len(steps)
    result: dict[str, Any] = {
        "seconds": round(seconds, 2),
        "samples_per_s": round(n / seconds, 3),
        "samples_per_cpu_s": round(n / cpu, 3),
        "mean_loss": round(statistics.fmean(losses), 4),
    }
    if split:
        result["parts_s"] = {k: round(v, 2) for k, v in parts.items()}
    return result


def _token_counts(records: list[dict[str, list[int]]]) -> dict[str, Any]:
    lengths = [len(t["input_ids"]) for t in records]
    targets = sum(sum(t["assistant_masks"]) for t in records)
    groups = [lengths[i : i + 4] for i in range(0, len(lengths) - 3, 4)]
    padded = sum(4 * max(g) for g in groups)
    by_length = sorted(lengths)
    padded_sorted = sum(4 * max(by_length[i : i + 4]) for i in range(0, len(by_length) - 3, 4))
    return {
        "records": len(records),
        "tokens": sum(lengths),
        "mean_length": round(statistics.fmean(lengths), 1),
        "target_share": round(targets / sum(lengths), 3),
        "padding_share_batch4_in_order": round(1 - sum(sum(g) for g in groups) / padded, 3),
        "padding_share_batch4_by_length": round(1 - sum(by_length[: len(groups) * 4]) / padded_sorted, 3),
    }


def main(argv: list[str] | None = None) -> int:
    import torch

    from finetune.tokens import load_tokenizer, sft_tokens

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="SFT records (araft convert sft)")
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    tokenizer = load_tokenizer("smollm2-135m")
    with open(args.data) as f:
        rows = [json.loads(line) for line, _ in zip(f, range(max(args.records, 400)), strict=False)]
    counted = [sft_tokens(tokenizer, row) for row in rows]  # the token counts: the first 400 records
    records = counted[: args.records]
    variants = args.variants.split(",")
    split = _run("targets", records[:8], split=True)
    print("every position's head, in parts", split, file=sys.stderr, flush=True)
    rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants if r % 2 == 0 else list(reversed(variants)):
            rounds[v].append(_run(v, records))
            print(v, rounds[v][-1], file=sys.stderr, flush=True)
    median = {v: statistics.median(x["samples_per_s"] for x in runs) for v, runs in rounds.items()}
    median_cpu = {v: statistics.median(x["samples_per_cpu_s"] for x in runs) for v, runs in rounds.items()}
    base, base_cpu = median.get("trl"), median_cpu.get("trl")
    return emit(
        {
            **stamp(
                "python -m benchmarks.sft_throughput_bench " + " ".join(argv if argv is not None else sys.argv[1:])
            ),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "tokens": _token_counts(counted),
            "parts_of_8_records_head_on_every_position": split,
            "samples_per_s": median,
            "vs_trl": {v: round(s / base, 2) for v, s in median.items()} if base else None,
            "samples_per_cpu_s": median_cpu,
            "vs_trl_by_cpu_time": {v: round(s / base_cpu, 2) for v, s in median_cpu.items()} if base_cpu else None,
            "rounds": rounds,
        },
        args.out,
    )


if __name__ == "__main__":
    sys.exit(main())
