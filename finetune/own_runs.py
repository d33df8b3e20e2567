"""The student's own exact runs, for expert iteration: of several runs of the student on each
training question (``araft eval --repeats K --temperature T`` over the training questions), the
ones worth training on beside the teacher's records.

A run is kept when it answered the gold answer exactly, every step parsed and named a tool and no
step failed, and no action repeats an earlier one of the run (a run that found the answer after a
loop would teach the loop). Of one question's kept runs, a run whose steps are another kept run's,
word for word, is left out, and at most ``per_question`` are kept, in the order of their repeats
(``producer.repeat``: eval's repeat R ran with seed ``--seed`` + R), not the order they finished in:
a question the student finds easy does not outweigh the ones it rarely solves, and the same runs
give the same selection.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from araft_lc.react.prompt import step_body
from araft_lc.react.step import repeats_an_action
from araft_lc.react.trajectory import TrajectoryRecord
from evals.metrics import exact_match

__all__ = ["DROPPED", "OwnRuns", "own_runs"]

# why a run was left out, in the order the checks run
DROPPED = {
    "not_exact": "did not answer the gold answer exactly",
    "step_error": "a step did not parse, named no tool, or its tool failed",
    "repeated_action": "an action repeats an earlier one of the run",
    "duplicate": "its steps are another kept run's, word for word",
    "over_cap": "the question already has its runs",
}


@dataclass
class OwnRuns:
    """The kept runs, and how many runs each check left out."""

    kept: list[TrajectoryRecord]
    runs: int
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def questions(self) -> int:
        """Questions with at least one kept run."""
        return len({r.question_id for r in self.kept})

    def summary(self) -> str:
        dropped = ", ".join(f"{self.dropped[k]} {k}" for k in DROPPED if self.dropped[k])
        kept = f"own runs: kept {len(self.kept)} of {self.runs}, on {self.questions} questions"
        return f"{kept}; left out {dropped}" if dropped else kept


def _why_not(record: TrajectoryRecord) -> str | None:
    """The ``DROPPED`` key of the first check ``record`` fails (before duplicates); None if none."""
    if (
        record.status != "answered"
        or record.prediction is None
        or record.gold_answer is None
        or not exact_match(record.prediction, record.gold_answer)
    ):
        return "not_exact"
    if not record.steps or any(s.action is None or s.error not in (None, "repeated_action") for s in record.steps):
        return "step_error"
    return "repeated_action" if repeats_an_action(record.steps) else None


def own_runs(records: Iterable[TrajectoryRecord], per_question: int) -> OwnRuns:
    """The runs of ``records`` to train on, at most ``per_question`` a question, by question in
    the order the questions first appear.

    Raises:
        ValueError: ``per_question`` is below 1.
    """
    if per_question < 1:
        raise ValueError(f"per_question is {per_question}: keep at least 1 run a question")
    by_question: dict[str, list[TrajectoryRecord]] = {}
    runs = 0
    for record in records:
        runs += 1
        by_question.setdefault(record.question_id, []).append(record)
    result = OwnRuns([], runs)
    for question_runs in by_question.values():
        question_runs.sort(key=lambda r: int(r.producer.get("repeat") or 0))  # stable: file order within a repeat
        bodies: set[tuple[str, ...]] = set()
        for record in question_runs:
            why = _why_not(record)
            body = tuple(step_body(s) for s in record.steps)
            if why is None and body in bodies:
                why = "duplicate"
            if why is None and len(bodies) >= per_question:
                why = "over_cap"
            if why is not None:
                result.dropped[why] += 1
                continue
            bodies.add(body)
            result.kept.append(record)
    return result
