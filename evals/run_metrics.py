"""What a run did, beyond its answer: the agent metrics the original lacked, and their means.

Per record (``record_metrics``): EM and F1 (%, the scores the recorder gave the record), steps,
whether it hit the step limit, repeated an earlier action, had a parse error, how many tool
errors, wall seconds and generated tokens.
``summarize`` averages them per level and over all, for each repeat, then reports the mean and
the standard deviation across repeats (what the original computed by hand over 5 runs); with
several repeats, also the best of them per question (pass@k): how much a method that only picks
among the agent's own runs could gain.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any, Iterable

from araft_lc.react.step import repeats_an_action
from araft_lc.react.trajectory import TrajectoryRecord
from evals.hotpotqa import LEVELS

__all__ = ["METRICS", "record_metrics", "summarize"]

# name -> (label, unit) in the order reports show them
METRICS = {
    "f1": ("F1", "%"),
    "em": ("EM", "%"),
    "steps": ("steps", ""),
    "step_limit": ("at step limit", "%"),
    "repeated": ("repeated action", "%"),
    "parse_error": ("parse error", "%"),
    "tool_errors": ("tool errors", ""),
    "seconds": ("seconds", ""),
    "tokens": ("tokens generated", ""),
}


def record_metrics(record: TrajectoryRecord) -> dict[str, float]:
    """The metrics of one run (percentages as 0 or 100, so their means are percentages)."""
    # scored once, by the recorder (``evals.metrics.score``); a run that did not answer scores 0
    answer = record.scores if record.status == "answered" else {}
    tokens = sum(((call.get("usage") or {}).get("output_tokens") or 0) for call in record.calls)
    return {
        "f1": 100 * answer.get("f1", 0.0),
        "em": 100 * answer.get("em", 0.0),
        "steps": float(len(record.steps)),
        # a run that did not answer ran out of steps (its status says what the last step was)
        "step_limit": 100.0 * (record.status not in ("answered", "error")),
        "repeated": 100.0 * repeats_an_action(record.steps),
        "parse_error": 100.0 * any(s.error == "parse_error" for s in record.steps),
        "tool_errors": float(sum(s.error in ("tool_error", "unknown_tool") for s in record.steps)),
        "seconds": float(record.seconds or 0.0),
        "tokens": float(tokens),
    }


# the scores a question's best repeat is taken on (``summarize``'s ``best_of_repeats``)
_BEST_OF = ("f1", "em")


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {m: statistics.fmean(r[m] for r in rows) for m in METRICS}


def summarize(records: Iterable[TrajectoryRecord]) -> dict[str, Any]:
    """``{"levels": {level: {metric: {"mean", "std", "n"}}}, "repeats": R, "questions": N}``, and
    with R > 1 ``"best_of_repeats": {"f1", "em"}``: the mean over questions of each one's best
    repeat.

    Levels are easy, medium, hard (those present) and ``all``; ``n`` counts runs per repeat.
    """
    by: dict[int, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    best: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(_BEST_OF, 0.0))
    for record in records:
        repeat = int(record.producer.get("repeat", 0))
        metrics = record_metrics(record)
        top = best[record.question_id]
        top.update({m: max(top[m], metrics[m]) for m in top})
        level = record.producer.get("level") or "unknown"
        by[repeat][level].append(metrics)
        by[repeat]["all"].append(metrics)
    levels = [level for level in (*LEVELS, "unknown") if any(level in per for per in by.values())] + ["all"]
    out: dict[str, Any] = {}
    for level in levels:
        means = [_mean(per[level]) for per in by.values() if per.get(level)]
        out[level] = {
            m: {
                "mean": statistics.fmean(x[m] for x in means),
                "std": statistics.stdev(x[m] for x in means) if len(means) > 1 else 0.0,
                "n": len(next(iter(by.values())).get(level, [])),
            }
            for m in METRICS
        }
    summary: dict[str, Any] = {"levels": out, "repeats": len(by), "questions": len(best)}
    if len(by) > 1:
        summary["best_of_repeats"] = {m: statistics.fmean(top[m] for top in best.values()) for m in _BEST_OF}
    return summary
