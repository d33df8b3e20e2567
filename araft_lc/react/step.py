"""``Step``: one model call of a run and what followed it, the unit of the graph's state and of
the trajectory record (``araft_lc.react.trajectory``), which re-exports it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterable, Literal, Optional

from typing_extensions import NotRequired, TypedDict

__all__ = ["StepError", "Step", "StepDict", "action_key", "repeats_an_action"]

# Why a step did not yield a normal observation; None for a normal step.
StepError = Literal["parse_error", "unknown_tool", "tool_error", "tool_timeout", "repeated_action"]


class StepDict(TypedDict):
    """A step as plain JSON data: what the graph's state and its checkpoints hold."""

    thought: str
    action: Optional[str]
    action_input: Optional[str]
    observation: Optional[str]
    raw: str
    error: Optional[StepError]
    observed_chars: NotRequired[int]  # only where the observation was cut: its length before


@dataclass
class Step:
    """One model call and what followed it.

    ``action`` is the tool name, ``"Answer"`` for the final step, or None when the output did not
    parse. ``observation`` is what the model is shown next (None after an answer), cut to the
    agent's ``observation_chars``; ``observed_chars`` is its length before the cut, where there
    was one (None otherwise, and then not written).
    """

    thought: str
    action: Optional[str]
    action_input: Optional[str]
    observation: Optional[str]
    raw: str
    error: Optional[StepError] = None
    observed_chars: Optional[int] = None

    def to_dict(self) -> StepDict:
        data = StepDict(
            thought=self.thought,
            action=self.action,
            action_input=self.action_input,
            observation=self.observation,
            raw=self.raw,
            error=self.error,
        )
        if self.observed_chars is not None:  # records of uncut steps stay as they were
            data["observed_chars"] = self.observed_chars
        return data

    @classmethod
    def from_dict(cls, data: Step | StepDict | dict[str, Any]) -> Step:
        if isinstance(data, Step):
            return data
        names = {f.name for f in fields(cls)}
        kept: dict[str, Any] = {k: v for k, v in data.items() if k in names}  # JSON data: the fields' types unchecked
        return cls(**kept)


def action_key(step: Step) -> tuple[str, str]:
    """A step's action compared case- and whitespace-insensitively (repetition guard and metrics)."""
    return ((step.action or "").casefold(), " ".join((step.action_input or "").casefold().split()))


def repeats_an_action(steps: Iterable[Step]) -> bool:
    """Whether a run's ``steps`` take an action (``action_key``) an earlier step took, or hold a
    step the repetition guard flagged; steps that named no action count for neither."""
    seen: set[tuple[str, str]] = set()
    for step in steps:
        if step.action is None:
            continue
        if step.error == "repeated_action" or action_key(step) in seen:
            return True
        seen.add(action_key(step))
    return False
