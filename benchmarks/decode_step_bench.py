"""What one decode step costs: 1 row against a full batch, 1 thread against all, LoRA merged or not.

Continuous batching gains what a step of ``rows`` rows saves over ``rows`` steps of one; this
measures both in one run, on the engine's own batch cache (``araft_lc.runtime.torch.batch_kv.BatchKV``), with
rows of ``--context`` tokens (about an agent's third step). A step that costs as much with one
thread as with two is bound by per-operation overhead (Python, dispatch), not by arithmetic.

    python -m benchmarks.decode_step_bench [--adapter DIR] [--rows 1,8] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from benchmarks.common import emit, stamp


def _model(adapter: str | None, merge: bool) -> Any:
    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.chat.presets import smollm2_path

    adapters = {"adapter": adapter} if adapter else {}
    chat = AraftChatModel(
        model_id=str(smollm2_path()),
        adapters=adapters,
        adapter="adapter" if adapter else None,
        merge_lora=merge,
        max_batch_size=1,
        max_new_tokens=1,
    )
    chat.invoke("hi")  # loads it (and merges)
    return chat


def step_ms(chat: Any, rows: int, context: int, steps: int) -> float:
    """The median milliseconds of a decode step over ``rows`` rows of about ``context`` tokens."""
    import torch
    from transformers import DynamicCache

    from araft_lc.runtime.torch.batch_kv import BatchKV

    model, kv = chat.engine.model, None
    with chat.engine.adapter_context(chat.adapter):
        for r in range(rows):  # rows of different lengths, as an agent's runs are
            ids = torch.randint(
                100, model.config.vocab_size - 100, (1, context + 16 * r), generator=torch.Generator().manual_seed(r)
            )
            past = DynamicCache(config=model.config)
            with torch.inference_mode():
                model(input_ids=ids, cache=past, use_cache=True, logits_to_keep=1)
            if kv is None:
                kv = BatchKV(past, rows)
            else:
                kv.add(past)
        assert kv is not None
        times = []
        for _ in range(steps + 2):  # the first two warm up
            start = time.perf_counter()
            with torch.inference_mode():
                mask, positions = kv.next_mask_and_positions()
                model(
                    input_ids=torch.full((rows, 1), 5),
                    attention_mask=mask,
                    position_ids=positions,
                    cache=kv.cache,
                    use_cache=True,
                )
            kv.advanced(mask)
            times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times[2:]), 1)


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="a LoRA adapter: measured unmerged and merged (merge_lora)")
    parser.add_argument("--rows", default="1,8")
    parser.add_argument("--threads", default=f"1,{torch.get_num_threads()}")
    parser.add_argument("--context", type=int, default=650)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    rows = [int(r) for r in args.rows.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    results: dict[str, Any] = {}
    for merge in [False, True] if args.adapter else [False]:
        chat = _model(args.adapter, merge)
        label = "merged" if merge else ("lora" if args.adapter else "base")
        for t in threads:
            torch.set_num_threads(t)
            for r in rows:
                ms = step_ms(chat, r, args.context, args.steps)
                results[f"{label}_threads{t}_rows{r}_ms"] = ms
                print(f"{label}, {t} threads, {r} rows: {ms} ms a step", file=sys.stderr, flush=True)
    torch.set_num_threads(max(threads))
    lo, hi, t = min(rows), max(rows), max(threads)
    first = "lora" if args.adapter else "base"
    out = {
        **stamp("python -m benchmarks.decode_step_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
        "model": "SmolLM2-135M-Instruct fp32" + (f" + {args.adapter}" if args.adapter else ""),
        "context": args.context,
        "steps": args.steps,
        "step_ms": results,
        # a token of a full batch against a token alone: the most continuous batching can gain in decode
        "per_token_gain": round(
            results[f"{first}_threads{t}_rows{lo}_ms"] * hi / lo / results[f"{first}_threads{t}_rows{hi}_ms"], 2
        ),
        # all threads against one, alone: 1.0 means the step is overhead, not arithmetic
        "thread_gain_alone": round(
            results[f"{first}_threads{min(threads)}_rows{lo}_ms"] / results[f"{first}_threads{t}_rows{lo}_ms"], 2
        ),
    }
    if args.adapter:
        out["merge_gain"] = {
            f"rows{r}": round(results[f"lora_threads{t}_rows{r}_ms"] / results[f"merged_threads{t}_rows{r}_ms"], 2)
            for r in rows
        }
    return emit(out, args.out)


if __name__ == "__main__":
    sys.exit(main())
