"""Static-cache decoding on this CPU: agent runs with ``decode="dynamic"`` and ``"static"``.

    python -m benchmarks.static_decode_bench [--questions 2] [--compile] [--lengths 1024,2048,4096] \\
        [--out benchmarks/static_decode_bench.json]

SmolLM2-135M-Instruct (fp32) runs the agent (5 steps at most, greedy, the prefix cache on, as
on a CPU by default) over the first N questions of ``dev_distractor_a500.jsonl`` with the local
index, once per decode path, alternating per question so all see the same machine load.
``--compile`` adds the static path compiled by inductor (``compile_decode=True``) after its
``warm_up``, whose seconds are reported. Reports seconds per run, the ratio to dynamic, decode
tokens/s through ``stream``, and whether every step's output was the same. The GPU figures of
the same code are ``gpu_bench``'s.
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
from benchmarks.common import DATA, decode_tok_s, emit, stamp
from evals.hotpotqa import load_questions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--prompt", default="fewshot")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--compile", action="store_true", help="add the static path compiled by inductor")
    parser.add_argument("--lengths", default="1024,2048,4096", help="the static caches (a fewshot run: ~900-2,500)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    questions = list(load_questions(DATA / "dev_distractor_a500.jsonl"))[: args.questions]
    tool = wikipedia_tool(str(DATA / "wiki_corpus.jsonl.gz"))
    common = {"model_id": str(smollm2_path()), "max_new_tokens": args.max_new_tokens, "prefix_cache": True}
    lengths = [int(n) for n in args.lengths.split(",")]
    variants = {"dynamic": {}, "static": {"decode": "static", "static_cache_lengths": lengths}}
    if args.compile:
        variants["static_compiled"] = {**variants["static"], "compile_decode": True}
    models = {name: AraftChatModel(**common, **fields) for name, fields in variants.items()}
    warm = {name: m.warm_up() for name, m in models.items() if m.decode == "static"}
    agents = {name: create_araft_agent(m, [tool], prompt=args.prompt, max_steps=5) for name, m in models.items()}
    seconds: dict[str, list[float]] = {name: [] for name in models}
    same = True
    for q in questions:
        outputs = {}
        for name, agent in agents.items():
            start = time.perf_counter()
            outputs[name] = [s["raw"] for s in agent.invoke({"question": q.question})["steps"]]
            seconds[name].append(time.perf_counter() - start)
        same &= all(o == outputs["dynamic"] for o in outputs.values())
        print(f"{q.id}: " + ", ".join(f"{n} {s[-1]:.1f} s" for n, s in seconds.items()), file=sys.stderr, flush=True)
    per_run = {name: round(statistics.fmean(s), 2) for name, s in seconds.items()}
    result = {
        **stamp("python -m benchmarks.static_decode_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
        "model": "SmolLM2-135M-Instruct fp32",
        "prompt": args.prompt,
        "runs": len(questions),
        "seconds_per_run": per_run,
        "speedup_over_dynamic": {n: round(per_run["dynamic"] / s, 2) for n, s in per_run.items() if n != "dynamic"},
        "decode_tok_s": {n: decode_tok_s(m, questions[0].question, 64) for n, m in models.items()},
        "warm_up_s": warm,
        "identical_outputs": same,
    }
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
