"""Issue 17's GPU figures in one call, through the project's own model, agent and batcher.

    python -m benchmarks --gpu [--save]                  # on a CUDA machine: benchmarks/gpu_run.sh
    python -m benchmarks.gpu_bench --shape tiny --in-process --out X.json    # the same code, CPU, tiny

A Llama-2-7B-shaped model with random weights (4096 hidden, 32 layers, 11008 MLP, the SmolLM2
tokenizer: no Hub needed) and a LoRA adapter with non-zero B are saved once, then each precision
(bf16, NF4) runs in its own subprocess with its own time limit, recording as it goes:
  - decode: tokens/s of batch-1 decoding through ``AraftChatModel.stream`` (first token to last,
    so prefill is not counted), 128 new tokens after a ~900-token prompt;
  - agent: the ReAct agent, ``fewshot`` prompt, 5 steps of 48 new tokens (random weights never
    write a stop string): seconds per run and generated tokens/s, prefix cache on and off;
  - dynamic (``generate``'s growing cache, today's path), then static (``decode="static"``,
    compiled; NF4 with ``compile_decode=True``) after ``warm_up()``, whose seconds are the
    compile time; bf16 also with the LoRA merged; whether the agent's steps stayed the same;
  - NF4: 8 agent runs at once through the batcher against one at a time.
Random weights make the steps noise but the shapes and the work real. The prefix-cache switches
poke private attributes (``_cache``, ``_static``), as a benchmark may.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SHAPES = {
    "7b": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
}
LENGTHS = [1024, 2048, 4096]  # the static caches: a fewshot agent run spans ~900 to ~2,000 tokens
PLAN = [("make", 120), ("bf16", 240), ("nf4", 240)]  # stage, seconds at most


def _record(out: Path, key: str, value: Any) -> None:
    result = json.loads(out.read_text()) if out.exists() else {}
    result[key] = value
    out.write_text(json.dumps(result, indent=1) + "\n")


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    import platform

    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"


def stage_make(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    model_dir, lora_dir = Path(args.work) / f"llama-{args.shape}", Path(args.work) / f"lora-{args.shape}"
    if (lora_dir / "adapter_config.json").is_file():
        return {"reused": str(model_dir)}
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    shape = SHAPES[args.shape]
    config = LlamaConfig(
        **shape,
        num_key_value_heads=shape["num_attention_heads"],
        vocab_size=len(tok),
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    cuda = torch.cuda.is_available()
    torch.manual_seed(0)
    start = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16 if cuda else torch.float32)
    with torch.device("cuda" if cuda else "cpu"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(model_dir, max_shard_size="5GB")
    tok.save_pretrained(model_dir)
    peft = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.01)  # an adapter that changes the outputs
    peft.save_pretrained(lora_dir)
    return {
        "params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        "make_and_save_s": round(time.perf_counter() - start, 1),
    }


def _agent(agent: Any, questions: list, runs: int) -> tuple[dict[str, Any], list]:
    from benchmarks.batching_bench import run

    seconds, steps, tokens = run(agent, questions[:runs], 1)
    return {
        "s_per_run": round(seconds / runs, 2),
        "gen_tok_s": round(tokens / seconds, 1),
        "steps": sum(len(s) for s in steps),
    }, steps


def stage_model(args: argparse.Namespace, precision: str) -> dict[str, Any]:
    import torch
    from langchain_core.messages import HumanMessage, SystemMessage

    from araft_lc.agent.graph import create_araft_agent
    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.wiki.select import wikipedia_tool
    from benchmarks.batching_bench import run
    from benchmarks.common import decode_tok_s
    from evals.hotpotqa import load_questions

    cuda = torch.cuda.is_available()
    out, key = Path(args.out), precision
    res: dict[str, Any] = {"nf4": precision == "nf4" and cuda}
    res["label"] = "NF4" if res["nf4"] else "bf16" if cuda else f"fp32 on CPU (the {precision} stage)"
    save = lambda: _record(out, key, res)  # noqa: E731 - after every figure, so a timeout keeps the rest
    start = time.perf_counter()
    m = AraftChatModel(
        model_id=str(Path(args.work) / f"llama-{args.shape}"),
        load_in_4bit=res["nf4"],
        adapters={"lora": str(Path(args.work) / f"lora-{args.shape}")},
        adapter="lora",
        max_new_tokens=args.new_tokens,
        prefix_cache=True,
        static_cache_lengths=LENGTHS,
    )
    res["load_s"] = round(time.perf_counter() - start, 1)
    if cuda:
        res["mem_after_load_gb"] = round(torch.cuda.memory_allocated() / 2**30, 2)
    save()
    questions = list(load_questions(args.questions))[: max(args.runs, args.concurrency) + 1]
    agent = create_araft_agent(m, [wikipedia_tool(args.corpus)], prompt="fewshot", max_steps=args.steps)
    prompt = [
        SystemMessage(" ".join(["Answer the question from what the pages say."] * 70)),
        HumanMessage(questions[0].question),
    ]  # ~700 tokens of SmolLM2's tokenizer: the 1,024 cache
    measured = {}

    def config(name: str, off: Any) -> None:
        """Decode tokens/s, then agent runs with the prefix cache on and off (``off`` turns it off)."""
        r = res.setdefault(name, {})
        r["decode_tok_s"] = decode_tok_s(m, prompt, args.decode_tokens)
        r["agent_prefix_on"], steps = _agent(agent, questions[1:], args.runs)
        measured[name] = steps
        if name != "dynamic":
            mine, theirs = [s for run in steps for s in run], [s for run in measured["dynamic"] for s in run]
            r["same_steps_as_dynamic"] = steps == measured["dynamic"]
            r["same_step_share"] = round(
                sum(a == b for a, b in zip(mine, theirs, strict=False)) / max(1, len(theirs)), 2
            )
            r["compiled"] = getattr(m.engine.static._base, "_compiled_call", None) is not None
        save()
        with off():
            res[name]["agent_prefix_off"], _ = _agent(agent, questions[1:], args.runs)
        save()

    @contextlib.contextmanager
    def dynamic_off():
        saved, m.engine.prefix_cache = m.engine.prefix_cache, None
        yield
        m.engine.prefix_cache = saved

    @contextlib.contextmanager
    def static_off():
        m.engine.static.reuse_prefix = False
        yield
        m.engine.static.reuse_prefix = True

    agent.invoke({"question": questions[0].question})  # warm-up of the dynamic path
    config("dynamic", dynamic_off)
    if precision == "nf4":
        one = res["dynamic"]["agent_prefix_on"]["s_per_run"]
        seconds, _, tokens = run(agent, questions[1 : args.concurrency + 1], args.concurrency)
        res["concurrency"] = {
            "n": args.concurrency,
            "s": round(seconds, 1),
            "gen_tok_s": round(tokens / seconds, 1),
            "speedup_vs_one_at_a_time": round(args.concurrency * one / seconds, 2),
            "batch_sizes": dict(m.engine.batcher.batches),
        }
        save()

    def static(name: str, compile_decode: Any) -> bool:
        """The static path (a fresh decoder) after its warm-up; an error is recorded, not raised."""
        m.engine.decode, m.engine.compile_decode, m.engine.static = "static", compile_decode, None
        try:
            res[name] = {"compile_s": m.warm_up()}
            save()
            config(name, static_off)
            return True
        except Exception as e:  # e.g. NF4 under torch.compile: say how it failed, then go on
            res[f"{name}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            res.pop(name, None)
            save()
            return False

    # bf16: transformers compiles on CUDA by itself; NF4 it would not: ask, else go on uncompiled
    if not static("static", True if res["nf4"] else None) and res["nf4"]:
        static("static", False)
    if precision == "bf16":
        m.merge_lora = True  # merged at the next call; the graphs see new weights and recompile
        static("static_merged", None)
    if cuda:
        res["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    save()
    return res


def _stage(args: argparse.Namespace, name: str) -> dict[str, Any]:
    return stage_make(args) if name == "make" else stage_model(args, name)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import DATA

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    parser.add_argument("--tokenizer", help="a tokenizer folder (default: SmolLM2's)")
    parser.add_argument("--corpus", default=str(DATA / "wiki_corpus.jsonl.gz"))
    parser.add_argument("--questions", default=str(DATA / "dev_distractor_a500.jsonl"))
    parser.add_argument("--work", default="/tmp/araft-gpu-bench", help="where the model and adapter are saved")
    parser.add_argument("--stages", default=",".join(n for n, _ in PLAN))
    parser.add_argument("--budget-s", type=float, default=540, help="all stages together")
    parser.add_argument("--runs", type=int, default=2, help="agent runs per figure")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=48, help="per agent step")
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--in-process", action="store_true", help="no subprocess per stage (tests)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # a child runs one stage
    parser.add_argument("--out", default="benchmarks/gpu_bench.json")
    args = parser.parse_args(argv)
    import torch

    if args.shape != "tiny" and not torch.cuda.is_available():
        print(
            "gpu_bench: no CUDA GPU here; run it on a GPU machine (benchmarks/gpu_run.sh), "
            "or a tiny shape (--smoke; gpu_bench --shape tiny) to try the code on a CPU",
            file=sys.stderr,
        )
        return 1
    if args.tokenizer is None:
        from araft_lc.chat.presets import smollm2_path

        args.tokenizer = str(smollm2_path())
    out = Path(args.out)
    if args.stage:
        _record(out, args.stage, _stage(args, args.stage))
        return 0
    out.unlink(missing_ok=True)
    command = "python -m benchmarks.gpu_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    _record(
        out,
        "stamp",
        {
            "command": command,
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "shape": args.shape,
            "commit": _commit(),
        },
    )
    deadline = time.time() + args.budget_s
    wanted = args.stages.split(",")
    for name, limit in [p for p in PLAN if p[0] in wanted]:
        left = min(limit, deadline - time.time())
        start = time.perf_counter()
        if left < 30:
            rc: Any = "skipped: out of time"
        elif args.in_process:
            _record(out, name, _stage(args, name))
            rc = 0
        else:
            child = [
                sys.executable,
                "-m",
                "benchmarks.gpu_bench",
                *(argv if argv is not None else sys.argv[1:]),
                "--stage",
                name,
                "--tokenizer",
                args.tokenizer,
                "--out",
                str(out),
            ]
            try:
                rc = subprocess.run(child, timeout=left).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        _record(out, f"{name}_meta", {"rc": rc, "wall_s": round(time.perf_counter() - start, 1)})
        print(f"gpu_bench: {name} {rc} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return 0


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
