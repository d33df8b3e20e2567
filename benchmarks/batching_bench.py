"""Batched generation across concurrent agent runs: questions per minute at concurrency 1 and K.

    python -m benchmarks.batching_bench [--questions 8] [--concurrency 8] [--prompt zeroshot_turns]
                                        [--modes sequential,padded,continuous]
                                        [--adapter DIR] [--out benchmarks/batching_bench.json]

SmolLM2-135M-Instruct (fp32, this CPU), greedy, 5 steps at most, the local index. The same
questions run one at a time (``sequential``: ``max_batch_size=1``, the prefix cache on, no
batching), then K at a time through ``agent.batch``: ``padded`` gathers waiting calls into one
padded ``generate``, ``continuous`` decodes in one running batch that calls join and leave
(``araft_lc.runtime.torch.continuous_batch``). Reports questions per minute, generated tokens per second, the
speedup over the first mode, prompt tokens computed (padding not counted), the batch sizes that
ran (continuous: rows per decode step, and the engine's prefill and decode seconds), and whether
every step's output was the same as the first mode's. On a shared machine the process's CPU
seconds (``cpu_speedup``) are steadier than wall time.

Each mode runs in a fresh process, as a user's run would: in one process, a forward on another
thread (an earlier mode's) slowed the continuous engine's steps about 1.5x (libgomp gives each
calling thread its own OpenMP team and, with more of its threads than cores, stops its workers
spinning between the thousands of small parallel regions of a step; RESULTS.md). ``--in-process``
runs them one after another in this one, to measure that.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from araft_lc.agent.graph import create_araft_agent
from araft_lc.agent.recorder import TrajectoryRecorder
from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.chat.presets import smollm2_path
from araft_lc.wiki.select import wikipedia_tool
from benchmarks.common import DATA, emit, stamp
from evals.hotpotqa import load_questions, sample_questions


def run(agent, questions, concurrency: int, usage: list | None = None) -> tuple[float, list, int]:
    """Seconds, each question's step outputs, generated tokens; each call's usage into ``usage``."""
    recorder = TrajectoryRecorder()
    configs = [{"callbacks": [recorder], "metadata": {"question_id": q.id}} for q in questions]
    start = time.perf_counter()
    if concurrency == 1:
        for q, c in zip(questions, configs, strict=True):
            agent.invoke({"question": q.question}, c)
    else:
        agent.batch(
            [{"question": q.question} for q in questions], [{**c, "max_concurrency": concurrency} for c in configs]
        )
    seconds = time.perf_counter() - start
    by_id = {r.question_id: r for r in recorder.records}
    steps = [[s.raw for s in by_id[q.id].steps] for q in questions]
    calls = [c.get("usage") or {} for r in recorder.records for c in r.calls]
    if usage is not None:
        usage.extend(calls)
    return seconds, steps, sum(u.get("output_tokens", 0) for u in calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompt", default="zeroshot_turns")
    parser.add_argument("--adapter")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--modes", default="sequential,padded,continuous")
    parser.add_argument("--out")
    parser.add_argument("--in-process", action="store_true", help="every mode in this process, one after another")
    parser.add_argument("--steps-out", help=argparse.SUPPRESS)  # a child's step outputs, for the parent to compare
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    labels = args.modes.split(",")
    if len(labels) > 1 and not args.in_process:
        return _in_fresh_processes(args, argv, labels)
    questions = sample_questions(list(load_questions(DATA / "dev_distractor_a500.jsonl")), limit=args.questions, seed=0)
    tool = wikipedia_tool(str(DATA / "wiki_corpus.jsonl.gz"))
    adapters = {"adapter": args.adapter} if args.adapter else {}
    common = {
        "model_id": str(smollm2_path()),
        "max_new_tokens": args.max_new_tokens,
        "adapters": adapters,
        "adapter": "adapter" if args.adapter else None,
    }
    modes = {
        "sequential": (1, {"max_batch_size": 1}),
        "padded": (args.concurrency, {"max_batch_size": args.concurrency, "batching": "padded"}),
        "continuous": (args.concurrency, {"max_batch_size": args.concurrency, "batching": "continuous"}),
    }
    results, steps = {}, {}
    for label in labels:
        concurrency, fields = modes[label]
        model = AraftChatModel(**common, **fields)
        agent = create_araft_agent(model, [tool], prompt=args.prompt, max_steps=5)
        usage: list = []
        cpu = time.process_time()  # every thread of this process: the work, whatever else the machine runs
        seconds, steps[label], tokens = run(agent, questions, concurrency, usage)
        cpu = time.process_time() - cpu
        prompt_tokens = sum(u.get("input_tokens", 0) for u in usage)
        reused = model.engine.prefix_cache.reused_tokens if model.engine.prefix_cache is not None else 0
        results[label] = {
            "concurrency": concurrency,
            "seconds": round(seconds, 1),
            "questions_per_minute": round(60 * len(questions) / seconds, 2),
            "generated_tokens_per_second": round(tokens / seconds, 1),
            "prompt_tokens": prompt_tokens,
            "prompt_tokens_computed": prompt_tokens - reused,
            "cpu_seconds": round(cpu, 1),
            "batch_sizes": dict(model.engine.batcher.batches) if model.engine.batcher else {},
        }
        if hasattr(model.engine.batcher, "stats"):
            results[label]["engine"] = {k: round(v, 1) for k, v in model.engine.batcher.stats.items()}
        print(f"{label}: {seconds:.1f} s, {results[label]['questions_per_minute']} q/min", file=sys.stderr, flush=True)
    if args.steps_out:
        Path(args.steps_out).write_text(json.dumps(steps))
    out = {
        **stamp("python -m benchmarks.batching_bench " + " ".join(argv)),
        "model": "SmolLM2-135M-Instruct fp32" + (f" + {args.adapter}" if args.adapter else ""),
        "prompt": args.prompt,
        "questions": len(questions),
        "processes": "one" if len(labels) == 1 else "one for all",
        **_compared(results, steps),
    }
    return emit(out, args.out)


def _compared(results: dict, steps: dict) -> dict:
    """``results`` with each mode's speedup over the first and whether its outputs were the first's."""
    first = next(iter(results))
    for label, r in results.items():
        r["speedup"] = round(results[first]["seconds"] / r["seconds"], 2)
        r["cpu_speedup"] = round(results[first]["cpu_seconds"] / r["cpu_seconds"], 2)
        r["identical_outputs"] = steps[label] == steps[first]
    return {**results, "identical_outputs": all(r["identical_outputs"] for r in results.values())}


def _in_fresh_processes(args: argparse.Namespace, argv: list[str], labels: list[str]) -> int:
    """Each mode in a child process of its own, one after another; one result, as in-process."""
    results, steps, head = {}, {}, {}
    passed = [
        "--questions",
        str(args.questions),
        "--concurrency",
        str(args.concurrency),
        "--prompt",
        args.prompt,
        "--max-new-tokens",
        str(args.max_new_tokens),
        *(["--adapter", args.adapter] if args.adapter else []),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for label in labels:
            out, steps_out = Path(tmp) / f"{label}.json", Path(tmp) / f"{label}.steps.json"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.batching_bench",
                    *passed,
                    "--modes",
                    label,
                    "--out",
                    str(out),
                    "--steps-out",
                    str(steps_out),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            child = json.loads(out.read_text())
            results[label] = {
                k: v for k, v in child[label].items() if k not in ("speedup", "cpu_speedup", "identical_outputs")
            }
            steps.update(json.loads(steps_out.read_text()))
            head = {k: child[k] for k in ("date", "machine", "model", "prompt", "questions")}
    out = {
        **stamp("python -m benchmarks.batching_bench " + " ".join(argv)),
        **head,
        "processes": "one per mode",
        **_compared(results, steps),
    }
    return emit(out, args.out)


if __name__ == "__main__":
    sys.exit(main())
