"""The learning curve's training sets: nested subsets of SFT records, cut by question.

Every set holds all the records of ``--base`` (the shipped adapter's 600 questions), then the
records of the first N questions of ``--more`` in one seeded order, so each larger set holds every
smaller one: the curve moves with data alone. A question's records (both teachers, both orders)
go in or out together.

    python -m benchmarks.learning_curve --base runs/q600/sft.jsonl --more runs/q2838/sft-new.jsonl \\
        --questions 1200 2400 2838 --seed 0 --out runs/curve

writes ``runs/curve/q1200.jsonl`` (and so on) and prints each set's questions and records.

``--extra`` adds records to every set, for the questions the set holds, after the teacher's: the
student's own exact runs of expert iteration (``araft convert sft --own-runs``). A line the set
already holds is left out (a student run word for word the teacher's would count twice).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.common import stamp


def _by_question(path: str) -> dict[str, list[str]]:
    """The record lines of ``path`` per question id, in file order."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.setdefault(str(json.loads(line)["question_id"]), []).append(
                    line if line.endswith("\n") else line + "\n"
                )
    return out


def subsets(
    base: str, more: str, sizes: Sequence[int], seed: int, out: Path, extra: Optional[str] = None
) -> list[dict[str, Any]]:
    """Write one record file per size in ``sizes`` (questions in all, ``base``'s included), each
    with ``extra``'s records of its questions after the rest."""
    kept, new_records = _by_question(base), _by_question(more)
    added = _by_question(extra) if extra else {}
    shared = kept.keys() & new_records.keys()
    if shared:
        raise SystemExit(
            f"{len(shared)} questions are in both --base and --more (e.g. {sorted(shared)[0]}): they would count twice"
        )
    order = sorted(new_records)
    random.Random(seed).shuffle(order)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        if not len(kept) <= size <= len(kept) + len(new_records):
            raise SystemExit(
                f"--questions {size}: between {len(kept)} (--base alone) and {len(kept) + len(new_records)}"
            )
        questions = [*kept, *order[: size - len(kept)]]
        lines = [line for q in questions for line in (kept.get(q) or new_records[q])]
        row: dict[str, Any] = {"questions": size, "records": len(lines)}
        if extra:
            held, in_set = set(lines), set(questions)
            more_lines = []
            for line in (line for q in questions for line in added.get(q, [])):
                if line not in held:
                    held.add(line)
                    more_lines.append(line)
            row["extra"] = {
                "records": len(more_lines),
                "questions": sum(q in added for q in questions),
                "already_held": sum(len(added.get(q, [])) for q in questions) - len(more_lines),
                "outside_the_set": sum(len(v) for q, v in added.items() if q not in in_set),
            }
            lines += more_lines
            row["records"] = len(lines)
        path = out / f"q{size}.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        rows.append({**row, "file": str(path)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="records every set holds")
    parser.add_argument("--more", required=True, help="records added question by question, in a seeded order")
    parser.add_argument("--questions", type=int, nargs="+", required=True, help="questions in each set, base included")
    parser.add_argument(
        "--extra", help="records every set also holds for its questions (the student's own runs: expert iteration)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = subsets(args.base, args.more, args.questions, args.seed, args.out, args.extra)
    print(
        json.dumps(
            {
                **stamp("python -m benchmarks.learning_curve " + " ".join(argv if argv is not None else sys.argv[1:])),
                "sets": rows,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
