"""Why runs fail: each run without an exact answer gets one cause, the first thing that went wrong
in the order below, read from its steps and the question's supporting pages. Counted side by
side for several runs, it says which lever to pull next (retrieval, the bridge hop, reading, the
answer's form, or the loop itself).

A page counts as read when an observation is that page's introduction (``Question.shows``); the
supporting pages come from the questions file the run used.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

from araft_lc.react.step import repeats_an_action
from araft_lc.react.trajectory import TrajectoryRecord
from evals.hotpotqa import Question
from evals.metrics import normalize_answer

__all__ = [
    "CAUSES",
    "Reach",
    "failure_cause",
    "answers_a_search",
    "loops",
    "reach",
    "FailureCounts",
    "count_failures",
    "failures_table",
]

# cause -> (its name in tables, what it means), in the order they are tried
CAUSES: dict[str, tuple[str, str]] = {
    "run_error": ("run error", "no answer: the time limit, or a tool or server failure, ended the run"),
    "parse_error": ("parse error", "no answer; the model wrote a step the parser could not read"),
    "repeat": ("repeat", "no answer; the run took an action it had already taken"),
    "step_limit": ("step limit", "no answer within the step limit, without repeating itself"),
    "answer_form": (
        "answer form",
        'the answer holds the gold one or is part of it ("2015" for "since 2015"), or a name where the gold is yes/no',
    ),
    "first_search_wrong": (
        "first search wrong",
        "the first search read no supporting page, and the run never read them all",
    ),
    "bridge_missed": ("bridge entity missed", "the first search read a supporting page; another one was never read"),
    "wrong_answer": ("right pages, wrong answer", "every supporting page was read; the answer is another one"),
}
_YES_NO = {"yes", "no"}


@dataclass(frozen=True)
class Reach:
    """How far a run got towards the evidence."""

    first_search_gold: bool  # the first search read a supporting page
    all_gold: bool  # every supporting page was read
    answer_seen: bool  # the gold answer appears in an observation


def reach(record: TrajectoryRecord, q: Question) -> Reach:
    searches = [s for s in record.steps if s.action == "Wikipedia"]
    observations = [s.observation for s in record.steps]
    gold = normalize_answer(q.answer)
    return Reach(
        first_search_gold=bool(searches) and bool(q.gold_pages_in([searches[0].observation])),
        all_gold=bool(q.supporting_titles) and len(q.gold_pages_in(observations)) == len(q.supporting_titles),
        answer_seen=bool(gold) and any(f" {gold} " in f" {normalize_answer(o)} " for o in observations if o),
    )


def answers_a_search(record: TrajectoryRecord) -> bool:
    """The run answered with one of its own searches (normalised): a bridge run that names the
    page it looked up instead of what the page says, or a comparison's run naming an entity."""
    searched = {normalize_answer(s.action_input or "") for s in record.steps if s.action == "Wikipedia"}
    return record.status == "answered" and normalize_answer(record.prediction or "") in searched - {""}


def loops(text: str, longest: int = 40) -> bool:
    """The text writes one sentence (or line) three times or more ("So the answer is X. So the
    answer is X. So the answer is X."), or ends in one run of words written three times over, as
    a step cut at the token limit does (its last word, which the limit may have cut, left out).
    ``longest``: the longest such run looked for, in words."""
    pieces = Counter(p.strip() for p in re.split(r"[.!?:]\s+|\n+", text) if p.strip())
    if pieces and max(pieces.values()) >= 3:
        return True
    words = text.split()[:-1]
    return any(
        all(words[-i] == words[-i - p] for i in range(1, 2 * p + 1))
        for p in range(1, min(longest, len(words) // 3) + 1)
    )


def failure_cause(record: TrajectoryRecord, q: Question) -> Optional[str]:
    """The run's cause of failure (a key of ``CAUSES``), or None for an exact answer (the EM the
    recorder scored; a record without scores has none)."""
    if record.status == "answered" and record.scores.get("em"):
        return None
    if record.status != "answered":
        if record.status in ("time_limit", "tool_error", "error"):
            return "run_error"
        if any(s.error == "parse_error" for s in record.steps):
            return "parse_error"
        if repeats_an_action(record.steps):
            return "repeat"
        return "step_limit"
    pred, gold = normalize_answer(record.prediction or "").split(), normalize_answer(q.answer).split()
    if (
        pred
        and gold
        and (set(pred) <= set(gold) or set(gold) <= set(pred))
        or (" ".join(gold) in _YES_NO and " ".join(pred) not in _YES_NO)
    ):
        return "answer_form"
    r = reach(record, q)
    if not r.all_gold:
        return "bridge_missed" if r.first_search_gold else "first_search_wrong"
    return "wrong_answer"


@dataclass
class FailureCounts:
    """One run's failures: counts per cause, the first example of each, and reach over all runs."""

    label: str
    runs: int = 0
    causes: Counter = field(default_factory=Counter)
    examples: dict[str, TrajectoryRecord] = field(default_factory=dict)
    reached: Counter = field(default_factory=Counter)  # Reach's fields, wrong_answer_searched, parse_error_loop

    @property
    def failed(self) -> int:
        return sum(self.causes.values())


def count_failures(label: str, records: Iterable[TrajectoryRecord], questions: Mapping[str, Question]) -> FailureCounts:
    """Every run's cause, counted.

    Raises:
        ValueError: a run's question is not among ``questions``.
    """
    out = FailureCounts(label)
    for record in records:
        q = questions.get(record.question_id)
        if q is None:
            raise ValueError(
                f"question {record.question_id} of run {label!r} is not in the questions given: "
                "pass the --questions file the run used"
            )
        out.runs += 1
        r = reach(record, q)
        out.reached.update(name for name, value in vars(r).items() if value)
        cause = failure_cause(record, q)
        if cause is not None:
            out.causes[cause] += 1
            out.examples.setdefault(cause, record)
            if answers_a_search(record):
                out.reached["wrong_answer_searched"] += 1
            if cause == "parse_error" and any(loops(s.raw or "") for s in record.steps if s.error == "parse_error"):
                out.reached["parse_error_loop"] += 1
    return out


def _share(n: int, of: int) -> str:
    return f"{n} ({100 * n / of:.0f}%)" if of else "0"


def _example(record: TrajectoryRecord) -> str:
    searches = " → ".join(f"`{s.action_input}`" for s in record.steps if s.action == "Wikipedia") or "none"
    question = record.question if len(record.question) <= 110 else record.question[:107] + "..."
    answer = record.prediction if record.status == "answered" else f"({record.status})"
    return f"{question} Searches: {searches}. Answer: {answer!s}; gold: {record.gold_answer}."


def failures_table(runs: Sequence[FailureCounts]) -> str:
    """Markdown: causes by run (count and share of the run's failures), reach by run, and one
    example of each cause per run."""
    head = "| cause | what it means | " + " | ".join(r.label for r in runs) + " |"
    lines = ["## Failures by cause", "", head, "|" + "---|" * (len(runs) + 2)]
    for key, (name, meaning) in CAUSES.items():
        lines.append(f"| {name} | {meaning} | " + " | ".join(_share(r.causes[key], r.failed) for r in runs) + " |")
    lines.append(
        "| **all failures** | runs without an exact answer | "
        + " | ".join(f"{r.failed} of {r.runs}" for r in runs)
        + " |"
    )
    lines += [
        "",
        "## How far runs got (all runs)",
        "",
        "| | " + " | ".join(r.label for r in runs) + " |",
        "|" + "---|" * (len(runs) + 1),
    ]
    for key, name in (
        ("first_search_gold", "first search reads a supporting page"),
        ("all_gold", "every supporting page read"),
        ("answer_seen", "gold answer in an observation"),
        ("wrong_answer_searched", "failed, answering with a title it searched"),
        ("parse_error_loop", "failed on a parse error, writing in a loop (a sentence three times over)"),
    ):
        lines.append(f"| {name} | " + " | ".join(_share(r.reached[key], r.runs) for r in runs) + " |")
    for r in runs:
        lines += ["", f"## Examples: {r.label}", ""]
        lines += [f"- **{CAUSES[key][0]}**: {_example(r.examples[key])}" for key in CAUSES if key in r.examples]
    return "\n".join(lines) + "\n"
