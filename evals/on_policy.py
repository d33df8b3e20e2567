"""On-policy corrections, DAgger's idea as preference pairs: the student runs (sampled, as it
will run); at every state its run reached, the teacher says what it would do from there; where
the two differ, the teacher's step is chosen and the student's rejected. Unlike pairs built from
the teacher's own runs, these rejected steps are what the student really does, from states the
student really reaches (after its own missed searches), so DPO has something to teach.

A student step that differs from the teacher's yet does no harm is no mistake: a search with
other words that reads a supporting page not read before, or an exact answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

from araft_lc.react.parser import Action, Answer, parse
from araft_lc.react.prompt import render_step, step_body
from araft_lc.react.trajectory import Step, TrajectoryRecord, action_key
from evals.hotpotqa import Question
from evals.metrics import exact_match
from evals.oracle import GIVE_UP, OracleChatModel

__all__ = ["REASONS", "Correction", "corrections", "step_reason"]

# why the student's step was rejected
REASONS = {
    "format": "the step did not parse, or named no tool",
    "wrong_answer": "answered wrongly where the teacher answers",
    "early_answer": "answered (wrongly) where the teacher still searches",
    "late_answer": "searched on where the teacher answers from what the run has read",
    "repeat": "repeated an earlier action",
    "search": "searched for a page that is no supporting page not yet read, where the teacher searches another",
}


@dataclass(frozen=True)
class Correction:
    """At the student's step ``step``: the teacher's step (``chosen``) against the student's."""

    step: int
    chosen: str
    rejected: str
    reason: str


def _teacher_step(teacher: OracleChatModel, q: Question, before: Sequence[Step]) -> Optional[Step]:
    """What the teacher writes after ``before``; None when it gives up (it has no label there)."""
    text = teacher.next_step(q.question, "\n".join(render_step(s) for s in before))
    parsed = parse(text)
    if isinstance(parsed, Answer):
        return None if parsed.answer == GIVE_UP else Step(parsed.thought, "Answer", parsed.answer, None, text)
    if isinstance(parsed, Action):
        return Step(parsed.thought, parsed.tool, parsed.tool_input, None, text)
    raise ValueError(f"the teacher wrote a step that does not parse: {text!r}")


def step_reason(step: Step, other: Step, before: Sequence[Step]) -> str:
    """Which of ``REASONS`` names what ``step`` did where ``other`` (a better step) was taken, after
    the steps ``before``; whether it was a mistake at all is the caller's to say."""
    if step.action is None or step.error in ("parse_error", "unknown_tool"):
        return "format"
    if step.action == "Answer":
        return "wrong_answer" if other.action == "Answer" else "early_answer"
    if action_key(step) in {action_key(s) for s in before} or step.error == "repeated_action":
        return "repeat"
    return "late_answer" if other.action == "Answer" else "search"


def _reason(student: Step, teacher: Step, before: Sequence[Step], q: Question) -> Optional[str]:
    """Why ``student`` is a mistake where the teacher writes ``teacher``; None if it is not one."""
    reason = step_reason(student, teacher, before)
    if reason in ("wrong_answer", "early_answer") and exact_match(student.action_input, q.answer):
        return None
    if reason == "search":
        if action_key(student) == action_key(teacher):
            return None
        read = set(q.gold_pages_in(s.observation for s in before))
        if set(q.gold_pages_in([student.observation])) - read:
            return None  # other words, a page the run needed
    return reason


def corrections(record: TrajectoryRecord, q: Question, teacher: OracleChatModel) -> Iterator[Correction]:
    """The corrections of one student run, step by step, up to its first unparsable step."""
    for i, step in enumerate(record.steps):
        label = _teacher_step(teacher, q, record.steps[:i])
        if label is not None:
            reason = _reason(step, label, record.steps[:i], q)
            if reason is not None:
                yield Correction(i, step_body(label), step_body(step), reason)
        if step.action is None:  # what follows an unparsable step is no state the teacher knows
            return
