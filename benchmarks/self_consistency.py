"""Self-consistency on the evaluation questions: split a seeded sample into parts (one ``araft eval``
process each), then score the finished runs for every number of runs K up to the one evaluated
and every vote rule, each against the greedy run (run 0 of the same records) by the paired
bootstrap.

    python -m benchmarks.self_consistency split --questions $D/dev_distractor_a500.jsonl --seed 0 \\
        --limit 300 --parts 2 --out runs/sc/questions
    # per part, at once (OMP_NUM_THREADS=1 each):
    araft eval --questions runs/sc/questions/part0.jsonl --corpus $D/wiki_corpus.jsonl.gz --seed 0 \\
        --max-new-tokens 128 --concurrency 8 --model araft-smollm2 --samples 5 --out runs/sc/k5-part0
    python -m benchmarks.self_consistency analyse runs/sc/k5-part0 runs/sc/k5-part1 --tokenizer araft-smollm2

The runs of K < evaluated are the first K of each question's runs (run 0 greedy, then the
sampled ones in seed order): the vote over them is what ``--samples K`` gives. Output tokens per
run are counted by tokenizing each step's text (what the model wrote, cut at its stop string).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from benchmarks.common import stamp


def split(questions: Sequence[str], seed: int, limit: Optional[int], parts: int, out: Path) -> list[Path]:
    """The seeded sample ``araft eval --seed --limit`` takes, in its order, as ``parts`` files of
    the original records (part k holds every ``parts``-th question from the k-th)."""
    from evals.hotpotqa import load_questions, sample_questions

    pool = [q for path in questions for q in load_questions(path)]
    picked = [q.id for q in sample_questions(pool, limit=limit, seed=seed)]
    raw: dict[str, dict[str, Any]] = {}
    for path in questions:
        text = Path(path).read_text(encoding="utf-8")
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(line) for line in text.splitlines() if line]
        )
        raw.update({str(r.get("_id", r.get("id"))): r for r in rows})
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(parts):
        path = out / f"part{k}.jsonl"
        path.write_text(
            "".join(json.dumps(raw[q], ensure_ascii=False) + "\n" for q in picked[k::parts]), encoding="utf-8"
        )
        paths.append(path)
    return paths


def analyse(dirs: Sequence[str], tokenizer: Optional[str] = None, variants: Optional[Path] = None) -> dict[str, Any]:
    """Per K and vote rule: F1, EM, the paired F1 difference against the greedy run, and output
    tokens per question. With ``variants``, each (K, rule)'s records as they would have come
    out of ``araft eval --samples K --vote RULE`` (the winning run's answer, steps and scores) go
    to ``variants/k{K}-{rule}/trajectories.jsonl``, for ``araft failures``."""
    from araft_lc.agent.vote import VOTE_RULES, vote
    from araft_lc.react.trajectory import Step, read_trajectories
    from evals.metrics import score
    from evals.paired import paired_bootstrap

    records = [r for d in dirs for r in read_trajectories(Path(d) / "trajectories.jsonl")]
    if not records or not records[0].runs:
        raise SystemExit("these runs hold no self-consistency runs (araft eval --samples K, K > 1)")
    count: Optional[Callable[[str], int]] = None
    if tokenizer:
        from finetune.tokens import load_tokenizer  # a preset (its GGUF's converted folder), hf:PATH or a folder

        tok = load_tokenizer(tokenizer)
        count = lambda text: len(tok(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    k_max = min(len(r.runs) for r in records)
    rows: list[dict[str, Any]] = []
    greedy = {r.question_id: 100 * score(r.runs[0]["answer"], r.gold_answer or "")["f1"] for r in records}
    for k in range(1, k_max + 1):
        for rule in VOTE_RULES if k > 1 else ("majority",):
            f1: dict[str, float] = {}
            em = 0.0
            tokens = 0
            voted = []
            for r in records:
                runs = r.runs[:k]
                chosen = runs[vote(runs, rule)["run"]]
                s = score(chosen["answer"], r.gold_answer or "")
                voted.append(
                    replace(
                        r,
                        prediction=chosen["answer"],
                        status=chosen["status"],
                        scores=s,
                        steps=[Step.from_dict(x) for x in chosen["steps"]],
                    )
                )
                f1[r.question_id], em = 100 * s["f1"], em + 100 * s["em"]
                if count is not None:
                    tokens += sum(count(step.get("raw") or "") for run in runs for step in run["steps"])
            if variants is not None:
                folder = variants / f"k{k}-{rule}"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "trajectories.jsonl").write_text(
                    "".join(json.dumps(v.to_dict(), ensure_ascii=False) + "\n" for v in voted), encoding="utf-8"
                )
            diff = paired_bootstrap(greedy, f1)
            rows.append(
                {
                    "k": k,
                    "rule": rule,
                    "f1": round(sum(f1.values()) / len(f1), 1),
                    "em": round(em / len(records), 1),
                    "vs_greedy": [round(diff.mean, 1), round(diff.low, 1), round(diff.high, 1)],
                    "output_tokens_per_question": round(tokens / len(records)) if count else None,
                }
            )
    best = [max(100 * score(run["answer"], r.gold_answer or "")["f1"] for run in r.runs) for r in records]
    return {
        "questions": len(records),
        "runs_per_question": k_max,
        "rows": rows,
        "oracle_best_of_k_f1": round(sum(best) / len(best), 1),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.self_consistency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split", help="a seeded question sample as parts, one per eval process")
    s.add_argument("--questions", nargs="+", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--limit", type=int)
    s.add_argument("--parts", type=int, default=2)
    s.add_argument("--out", required=True)
    a = sub.add_parser("analyse", help="F1 per K and vote rule from finished eval folders")
    a.add_argument("dirs", nargs="+")
    a.add_argument("--tokenizer", help="count output tokens with this preset's (or folder's) tokenizer")
    a.add_argument("--out", help="also write the result here (JSON)")
    a.add_argument("--variants", help="write each (K, rule)'s records under this folder, for araft failures")
    args = parser.parse_args(argv)
    if args.command == "split":
        for path in split(args.questions, args.seed, args.limit, args.parts, Path(args.out)):
            print(path)
        return 0
    result = {
        **stamp("python -m benchmarks.self_consistency " + " ".join(argv if argv is not None else sys.argv[1:])),
        **analyse(args.dirs, args.tokenizer, Path(args.variants) if args.variants else None),
    }
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
