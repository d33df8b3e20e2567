"""Prefix KV cache: prompt tokens computed and wall time per agent run, with and without it.

    python -m benchmarks.prefix_cache_bench [--questions 3] [--prompt fewshot] \\
        [--out benchmarks/prefix_cache_bench.json]

SmolLM2-135M-Instruct (fp32, this CPU) runs the agent (5 steps at most, greedy) over the first N
questions of ``dev_distractor_a500.jsonl`` with the local index, once with the cache and once
without, alternating per question so both see the same machine load. Reports prompt tokens
computed per run (prompt tokens minus those reused from the cache), seconds per run, and
whether every step's output was token-for-token the same.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from araft_lc.agent.graph import create_araft_agent
from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.chat.presets import smollm2_path
from araft_lc.wiki.select import wikipedia_tool
from benchmarks.common import DATA, emit, stamp
from evals.hotpotqa import load_questions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--prompt", default="fewshot")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    questions = list(load_questions(DATA / "dev_distractor_a500.jsonl"))[: args.questions]
    tool = wikipedia_tool(str(DATA / "wiki_corpus.jsonl.gz"))
    models = {
        cached: AraftChatModel(model_id=str(smollm2_path()), max_new_tokens=args.max_new_tokens, prefix_cache=cached)
        for cached in (False, True)
    }
    agents = {c: create_araft_agent(m, [tool], prompt=args.prompt, max_steps=5) for c, m in models.items()}
    rows: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    same = True
    for q in questions:
        outputs = {}
        for cached in (False, True):
            start = time.perf_counter()
            result = agents[cached].invoke({"question": q.question})
            seconds = time.perf_counter() - start
            outputs[cached] = [s["raw"] for s in result["steps"]]
            rows[cached].append({"seconds": seconds, "steps": len(result["steps"])})
        same &= outputs[False] == outputs[True]
        print(
            f"{q.id}: {rows[False][-1]['seconds']:.1f} s without, {rows[True][-1]['seconds']:.1f} s with the cache, "
            f"same output: {outputs[False] == outputs[True]}",
            file=sys.stderr,
            flush=True,
        )
    # both models read the same prompts (when the outputs are the same); the cached one counts them
    cache = models[True].engine.prefix_cache
    computed_with = cache.prompt_tokens - cache.reused_tokens
    n = len(questions)
    result = {
        **stamp("python -m benchmarks.prefix_cache_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
        "model": "SmolLM2-135M-Instruct fp32",
        "prompt": args.prompt,
        "runs": n,
        "prompt_tokens_per_run": cache.prompt_tokens / n,
        "computed_prompt_tokens_per_run": {"without": cache.prompt_tokens / n, "with": computed_with / n},
        "seconds_per_run": {
            k: statistics.fmean(r["seconds"] for r in rows[c]) for k, c in (("without", False), ("with", True))
        },
        "steps_per_run": statistics.fmean(r["steps"] for r in rows[True]),
        "identical_outputs": same,
    }
    result["prompt_token_ratio"] = round(
        result["computed_prompt_tokens_per_run"]["without"] / max(1, computed_with / n), 2
    )
    result["speedup"] = round(result["seconds_per_run"]["without"] / result["seconds_per_run"]["with"], 2)
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
