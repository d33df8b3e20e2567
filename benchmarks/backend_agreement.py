"""Two evaluations of the same questions, run by two engines: how far apart are their answers?

Greedy decoding on llama.cpp and on torch reads the same weights rounded differently (llama.cpp
multiplies quantised weights by activations rounded to 8 bits), so a near tie can go the other
way and a run can take another path from there. This counts, over the questions both evaluations
ran: the F1 of each with the paired bootstrap of the difference (``evals.paired``), the questions
whose every model text is equal, those whose answer differs, and the wall time of each.

    python -m benchmarks.backend_agreement --a DIR [DIR ...] --b DIR [DIR ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import emit, stamp


def _runs(dirs: list[str]) -> dict[str, Any]:
    from evals.runner import read_records

    return {r.question_id: r for d in dirs for r in read_records(d)}


def _seconds(dirs: list[str]) -> float:
    """The evaluation's wall time: its slowest part's (parts run side by side)."""
    return max(json.loads((Path(d) / "report.json").read_text()).get("seconds") or 0.0 for d in dirs)


def main(argv: list[str] | None = None) -> int:
    from evals.paired import paired_bootstrap, per_question_f1

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs="+", required=True, help="the first evaluation's output folders")
    parser.add_argument("--b", nargs="+", required=True, help="the second evaluation's output folders")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    a, b = _runs(args.a), _runs(args.b)
    shared = sorted(set(a) & set(b))
    texts = sum([c["output"] for c in a[q].calls] == [c["output"] for c in b[q].calls] for q in shared)
    answers = sum(a[q].prediction != b[q].prediction for q in shared)
    f1_a, f1_b = per_question_f1(a[q] for q in shared), per_question_f1(b[q] for q in shared)
    diff = paired_bootstrap(f1_a, f1_b)
    return emit(
        {
            **stamp("python -m benchmarks.backend_agreement " + " ".join(argv if argv is not None else sys.argv[1:])),
            "questions": len(shared),
            "f1_a": round(sum(f1_a.values()) / len(shared), 1),
            "f1_b": round(sum(f1_b.values()) / len(shared), 1),
            "f1_b_minus_a": {"mean": round(diff.mean, 1), "low": round(diff.low, 1), "high": round(diff.high, 1)},
            "every_model_text_equal": texts,
            "answer_differs": answers,
            "seconds_a": _seconds(args.a),
            "seconds_b": _seconds(args.b),
        },
        args.out,
    )


if __name__ == "__main__":
    sys.exit(main())
