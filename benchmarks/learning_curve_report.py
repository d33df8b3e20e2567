"""The learning curve's table and plot: each point's F1 and EM on the 300 evaluation questions,
against each index, with the paired bootstrap interval of its F1 against the baseline's
(``araft-smollm2``) on the same index.

A point is an evaluation written as two halves (``benchmarks/learning_curve_runs.sh eval NAME
INDEX ...``): ``PREFIX-INDEX-part0`` and ``-part1``, each an ``araft eval`` folder. An evaluation
whose halves are missing or unfinished (no ``report.json``, which ``araft eval`` writes at its
end), or a point that ran other questions than the baseline, is refused, not plotted half done.

    python -m benchmarks.learning_curve_report --baseline runs/eval-curve/shipped \\
        --point 600=runs/eval-curve/shipped --point 1200=runs/eval-curve/q1200 --indexes old all \\
        --out benchmarks/learning_curve.json --png docs/learning-curve.png

With ``--eval-questions`` and ``--training-questions`` (HotpotQA files), each row also holds the
scores on the evaluation questions that share no supporting page with any training question: a
gain a student makes by having read an evaluation question's page in training shows as a gap
between the two.

With ``--keep EARLIER.json`` (an earlier ``--out``), the earlier rows of the points not given now
stay in the table and the plot, as measured then: a point added later needs no evaluation of the
others again. Every row says when its evaluation finished and which run of the baseline it is
paired with (its F1), since two evaluations of one agent differ by about a point
(``docs/evaluation.md``, self-consistency).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from itertools import zip_longest
from pathlib import Path
from typing import Any, Optional, Sequence

from araft_lc.react.trajectory import TrajectoryRecord, read_trajectories
from benchmarks.common import emit, stamp
from evals.hotpotqa import Question, load_questions
from evals.paired import paired_bootstrap, per_question_f1
from evals.run_metrics import summarize

INDEX_NAMES = {"old": "wiki_corpus (11,736 pages)", "all": "wiki_corpus_all (32,533 pages)"}


def _runs(prefix: str, index: str) -> list[TrajectoryRecord]:
    """The runs of both halves of an evaluation."""
    runs: list[TrajectoryRecord] = []
    for part in (0, 1):
        folder = Path(f"{prefix}-{index}-part{part}")
        if not (folder / "report.json").is_file():
            raise SystemExit(
                f"{folder} holds no finished evaluation: run (or resume) "
                f"benchmarks/learning_curve_runs.sh eval {Path(prefix).name} {index} ..."
            )
        runs.extend(read_trajectories(folder / "trajectories.jsonl"))
    if not runs:
        raise SystemExit(f"{prefix} on {index} holds no runs")
    return runs


def _finished(prefix: str, index: str) -> str:
    """When an evaluation's last half finished (its ``report.json``, written at the end), UTC."""
    last = max(Path(f"{prefix}-{index}-part{part}", "report.json").stat().st_mtime for part in (0, 1))
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(last))


def _scores(runs: Sequence[TrajectoryRecord]) -> dict[str, float]:
    """F1 and EM as ``araft eval``'s report gives them (``evals.run_metrics``)."""
    means = summarize(runs)["levels"]["all"]
    return {"f1": round(means["f1"]["mean"], 2), "em": round(means["em"]["mean"], 2)}


def unseen_pages(evaluation: Sequence[Question], training: Sequence[Question]) -> set[str]:
    """The ids of the ``evaluation`` questions none of whose supporting pages is a supporting page
    of a ``training`` question."""
    seen = {title for q in training for title in q.supporting_titles}
    return {q.id for q in evaluation if not seen & set(q.supporting_titles)}


def _paired(base: dict[str, float], f1: dict[str, float]) -> dict[str, float]:
    d = paired_bootstrap(base, f1)
    return {"f1": round(d.mean, 2), "low": round(d.low, 2), "high": round(d.high, 2)}


def curve(
    baseline: str, points: Sequence[tuple[int, str]], indexes: Sequence[str], unseen: Optional[set[str]] = None
) -> list[dict[str, Any]]:
    """One row per point and index; with ``unseen`` (question ids), also the scores on those alone."""
    rows = []
    for index in indexes:
        base_runs = _runs(baseline, index)
        base = per_question_f1(base_runs)
        paired_with = {"eval": baseline, "f1": _scores(base_runs)["f1"], "measured": _finished(baseline, index)}
        for questions, prefix in points:
            runs = _runs(prefix, index)
            f1 = per_question_f1(runs)
            if set(f1) != set(base) or len(runs) != len(base):
                raise SystemExit(
                    f"{prefix} on {index}: {len(runs)} runs of {len(f1)} questions, the baseline's "
                    f"{len(base)}: evaluate both on the same questions, once each"
                )
            row = {
                "questions": questions,
                "eval": prefix,
                "index": index,
                **_scores(runs),
                "vs_baseline": _paired(base, f1),
                "measured": _finished(prefix, index),
                "baseline": paired_with,
            }
            if unseen is not None:
                kept = [r for r in runs if r.question_id in unseen]
                row["unseen_pages"] = {
                    "questions": len(kept),
                    **_scores(kept),
                    "vs_baseline": _paired({q: base[q] for q in unseen & set(base)}, f1),
                }
            rows.append(row)
    return rows


def _flag(command: str, name: str) -> Optional[str]:
    """The value of ``name`` in a command line, as ``name VALUE`` or ``name=VALUE``; None without it."""
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote: a command written by hand
        return None
    for word, following in zip_longest(words, words[1:]):
        if word == name:
            return following
        if word.startswith(name + "="):
            return word.partition("=")[2]
    return None


def keep(earlier: dict[str, Any], rows: Sequence[dict[str, Any]], indexes: Sequence[str]) -> list[dict[str, Any]]:
    """``rows`` with the ``earlier`` report's rows of the points (on ``indexes``) they do not
    measure again, each dated as measured then; in the order of ``indexes``, then questions."""
    new = {(r["questions"], r["index"]) for r in rows}
    prefix = _flag(earlier.get("command", ""), "--baseline")
    own = {b["index"]: b["f1"] for b in reversed(earlier["rows"]) if b["eval"] == prefix}  # its F1 on each index

    def dated(r: dict[str, Any]) -> dict[str, Any]:  # a row of a report written before rows were dated
        return {
            **r,
            "measured": r.get("measured", earlier["date"]),
            "baseline": r.get("baseline", {"eval": prefix, "f1": own.get(r["index"]), "measured": earlier["date"]}),
        }

    kept = [dated(r) for r in earlier["rows"] if r["index"] in indexes and (r["questions"], r["index"]) not in new]
    if len({r.get("unseen_pages", {}).get("questions") for r in [*rows, *kept]}) > 1:
        raise SystemExit(
            "--keep: the earlier rows and these differ in the unseen-pages column: pass --eval-questions and "
            "--training-questions as the earlier report did (its command is in it), or neither"
        )
    return sorted([*kept, *rows], key=lambda r: (list(indexes).index(r["index"]), r["questions"]))


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    unseen = all("unseen_pages" in r for r in rows) and bool(rows)
    head = "| questions | index | F1 | EM | F1 vs `araft-smollm2`, paired 95% | the baseline run's F1 |"
    if unseen:
        n = rows[0]["unseen_pages"]["questions"]
        head += f" F1 on the {n} with unseen pages | vs `araft-smollm2` on them |"
    lines = [head, "|---" * head.count(" |") + "|"]
    for r in rows:
        base = r.get("baseline", {}).get("f1")
        line = (
            f"| {r['questions']:,} | {r['index']} | {r['f1']:.2f} | {r['em']:.2f} | {_interval(r['vs_baseline'])} "
            f"| {'' if base is None else f'{base:.2f}'} |"
        )
        if unseen:
            u = r["unseen_pages"]
            line += f" {u['f1']:.2f} | {_interval(u['vs_baseline'])} |"
        lines.append(line)
    return "\n".join(lines)


def _interval(d: dict[str, float]) -> str:
    return f"{d['f1']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"


def plot(rows: Sequence[dict[str, Any]], png: str, goal: float = 30.0) -> None:
    """F1 against training questions, one line per index; each point's bar is its paired 95%
    interval against the baseline, drawn around the point; the axis starts at 20, not at the
    data, so that a point's move reads at its size; the dashed line is the issue's goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    indexes = list(dict.fromkeys(r["index"] for r in rows))
    for i, index in enumerate(indexes):
        mine = sorted((r for r in rows if r["index"] == index), key=lambda r: r["questions"])
        d = [r["vs_baseline"] for r in mine]
        ax.errorbar(
            [r["questions"] * (1 + 0.01 * (i - (len(indexes) - 1) / 2)) for r in mine],  # side by side
            [r["f1"] for r in mine],
            yerr=[[x["f1"] - x["low"] for x in d], [x["high"] - x["f1"] for x in d]],
            marker="o",
            capsize=3,
            label=INDEX_NAMES.get(index, index),
        )
    ax.axhline(goal, color="grey", linestyle="--", linewidth=1)
    ax.text(ax.get_xlim()[0], goal, f" goal {goal:g}", va="bottom", color="grey", fontsize=8)
    ax.set_ylim(20, max(35.0, max(r["f1"] + r["vs_baseline"]["high"] - r["vs_baseline"]["f1"] for r in rows) + 1))
    ax.set_xlabel("training questions")
    ax.set_ylabel("F1 on the 300 evaluation questions")
    ax.set_title("bars: paired 95% interval against araft-smollm2", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the evaluation every point is paired with (PREFIX)")
    parser.add_argument("--point", action="append", required=True, help="QUESTIONS=PREFIX, one per point")
    parser.add_argument("--indexes", nargs="+", default=["old", "all"])
    parser.add_argument("--eval-questions", nargs="+", help="the evaluation's HotpotQA files")
    parser.add_argument(
        "--training-questions", nargs="+", help="every training question's file: also score the unseen pages alone"
    )
    parser.add_argument("--keep", help="an earlier --out: its rows of points not given here stay, as measured then")
    parser.add_argument("--out", help="write the rows here (JSON)")
    parser.add_argument("--png", help="draw the curve here")
    args = parser.parse_args(argv)
    points = []
    for point in args.point:
        questions, sep, prefix = point.partition("=")
        if not sep or not questions.isdigit():
            raise SystemExit(f"--point {point!r}: write it QUESTIONS=PREFIX, e.g. 1200=runs/eval-curve/q1200")
        points.append((int(questions), prefix))
    unseen = None
    if bool(args.eval_questions) != bool(args.training_questions):
        raise SystemExit("--eval-questions and --training-questions go together: pass both, or neither")
    if args.eval_questions:
        evaluation = [q for path in args.eval_questions for q in load_questions(path)]
        unseen = unseen_pages(evaluation, [q for path in args.training_questions for q in load_questions(path)])
        if not unseen:
            raise SystemExit("every evaluation question shares a supporting page with a training question: no column")
    rows = curve(args.baseline, points, args.indexes, unseen)
    if args.keep:
        try:
            earlier = json.loads(Path(args.keep).read_text(encoding="utf-8"))
            if not (isinstance(earlier, dict) and isinstance(earlier.get("rows"), list) and "date" in earlier):
                raise ValueError("no dated rows")
        except (OSError, ValueError) as e:
            raise SystemExit(f"--keep {args.keep}: not a report this command wrote ({e}): pass its --out file") from e
        rows = keep(earlier, rows, args.indexes)
    command = "python -m benchmarks.learning_curve_report " + shlex.join(argv if argv is not None else sys.argv[1:])
    emit({**stamp(command), "rows": rows}, args.out)
    print(table(rows))
    if args.png:
        plot(rows, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
