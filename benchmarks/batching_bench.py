"""Batched generation across concurrent agent runs: questions per minute at concurrency 1 and K.

    python -m benchmarks.batching_bench [--questions 8] [--concurrency 8] [--prompt zeroshot_turns]
                                        [--adapter DIR] [--out benchmarks/batching_bench.json]

SmolLM2-135M-Instruct (fp32, this CPU), greedy, 5 steps at most, the local index. The same
questions run one at a time (``max_batch_size=1``: the prefix cache on, no batching) and then K
at a time through ``agent.batch`` (calls gathered into padded batches). Reports questions per
minute, generated tokens per second, the batch sizes that ran, and whether every step's output
was the same.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks.common import DATA, emit, stamp
from araft_lc.chat_model import AraftChatModel
from araft_lc.graph import create_araft_agent
from araft_lc.presets import smollm2_path
from araft_lc.recorder import TrajectoryRecorder
from araft_lc.tools.select import wikipedia_tool
from evals.hotpotqa import load_questions, sample_questions



def run(agent, questions, concurrency: int) -> tuple[float, list, int]:
    recorder = TrajectoryRecorder()
    configs = [{"callbacks": [recorder], "metadata": {"question_id": q.id}} for q in questions]
    start = time.perf_counter()
    if concurrency == 1:
        for q, c in zip(questions, configs):
            agent.invoke({"question": q.question}, c)
    else:
        agent.batch([{"question": q.question} for q in questions], [{**c, "max_concurrency": concurrency}
                                                                    for c in configs])
    seconds = time.perf_counter() - start
    by_id = {r.question_id: r for r in recorder.records}
    steps = [[s.raw for s in by_id[q.id].steps] for q in questions]
    tokens = sum((c.get("usage") or {}).get("output_tokens", 0) for r in recorder.records for c in r.calls)
    return seconds, steps, tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompt", default="zeroshot_turns")
    parser.add_argument("--adapter")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    questions = sample_questions(list(load_questions(DATA / "dev_distractor_a500.jsonl")), limit=args.questions, seed=0)
    tool = wikipedia_tool(str(DATA / "wiki_corpus.jsonl.gz"))
    adapters = {"adapter": args.adapter} if args.adapter else {}
    common = {"model_id": str(smollm2_path()), "max_new_tokens": args.max_new_tokens, "adapters": adapters,
              "adapter": "adapter" if args.adapter else None}
    results = {}
    for label, concurrency, batch in (("sequential", 1, 1), ("batched", args.concurrency, args.concurrency)):
        model = AraftChatModel(**common, max_batch_size=batch)
        agent = create_araft_agent(model, [tool], prompt=args.prompt, max_steps=5)
        seconds, steps, tokens = run(agent, questions, concurrency)
        results[label] = {"concurrency": concurrency, "seconds": round(seconds, 1),
                          "questions_per_minute": round(60 * len(questions) / seconds, 2),
                          "generated_tokens_per_second": round(tokens / seconds, 1), "steps": steps,
                          "batch_sizes": dict(model._batcher.batches) if model._batcher else {}}
        print(f"{label}: {seconds:.1f} s, {results[label]['questions_per_minute']} q/min", file=sys.stderr, flush=True)
    same = results["sequential"].pop("steps") == results["batched"].pop("steps")
    out = {**stamp("python -m benchmarks.batching_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
           "model": "SmolLM2-135M-Instruct fp32" + (f" + {args.adapter}" if args.adapter else ""),
           "prompt": args.prompt, "questions": len(questions), **results, "identical_outputs": same,
           "speedup": round(results["sequential"]["seconds"] / results["batched"]["seconds"], 2)}
    return emit(out, args.out)


if __name__ == "__main__":
    sys.exit(main())
