"""A LoRA training step on the CPU: fp32 against bf16 autocast, side by side in one run.

The SFT step of ``araft train`` on SmolLM2-135M (LoRA r=16 on every linear layer, as the shipped
adapter's recipe), one batch of ``--batch`` rows of ``--tokens`` tokens: forward, loss, backward,
optimizer step, each way ``--steps`` times from the same start. bf16 pays only where the CPU
multiplies bf16 natively (AVX512-BF16 or AMX, ``torch.backends.cpu.get_cpu_capability()``);
elsewhere torch converts. It reports the median step time and the losses of both, which must
follow the same curve.

    python -m benchmarks.train_step_bench [--batch 2] [--tokens 128] [--steps 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from typing import Any

from benchmarks.common import emit, stamp


def _steps(autocast: bool, batch: int, tokens: int, steps: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from araft_lc.chat.presets import smollm2_path

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(smollm2_path())),
        LoraConfig(
            r=16,
            lora_alpha=32,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.randint(100, 40000, (batch, tokens), generator=torch.Generator().manual_seed(1))
    times, losses = [], []
    for _ in range(steps + 1):  # the first warms up
        start = time.perf_counter()
        context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with context:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
        losses.append(round(float(loss), 4))
    return {"step_s": round(statistics.median(times[1:]), 2), "losses": losses, "first_step_s": round(times[0], 2)}


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    fp32 = _steps(False, args.batch, args.tokens, args.steps)
    print("fp32", fp32, file=sys.stderr, flush=True)
    bf16 = _steps(True, args.batch, args.tokens, args.steps)
    return emit(
        {
            **stamp("python -m benchmarks.train_step_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "fp32": fp32,
            "bf16_autocast": bf16,
            "bf16_speedup": round(fp32["step_s"] / bf16["step_s"], 2),
            "max_loss_gap": round(max(abs(a - b) for a, b in zip(fp32["losses"], bf16["losses"], strict=True)), 4),
        },
        args.out,
    )


if __name__ == "__main__":
    sys.exit(main())
