"""The trajectory record: one question run by the agent, as plain JSON.

Evals write it, finetune reads it, and nothing else is needed to rebuild an SFT or DPO record
from it (see ARCHITECTURE.md). ``Step`` is also the unit of the graph's state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

from typing_extensions import TypedDict

__all__ = ["Status", "StepError", "Step", "StepDict", "TrajectoryRecord", "RECORD_VERSION", "action_key", "read_trajectories"]

RECORD_VERSION = 1

# "error": the run itself failed (the model server kept failing); no steps may follow.
# "recursion_limit": the caller's LangGraph recursion_limit ended the run before max_steps did.
Status = Literal["running", "answered", "step_limit", "time_limit", "recursion_limit", "parse_error", "tool_error",
                 "error"]
# Why a step did not yield a normal observation; None for a normal step.
StepError = Literal["parse_error", "unknown_tool", "tool_error", "repeated_action"]


class StepDict(TypedDict):
    """A step as plain JSON data: what the graph's state and its checkpoints hold."""

    thought: str
    action: Optional[str]
    action_input: Optional[str]
    observation: Optional[str]
    raw: str
    error: Optional[StepError]


@dataclass
class Step:
    """One model call and what followed it.

    ``action`` is the tool name, ``"Answer"`` for the final step, or None when the output did not
    parse. ``observation`` is what the model is shown next (None after an answer).
    """

    thought: str
    action: Optional[str]
    action_input: Optional[str]
    observation: Optional[str]
    raw: str
    error: Optional[StepError] = None

    def to_dict(self) -> StepDict:
        return StepDict(**asdict(self))

    @classmethod
    def from_dict(cls, data: "Step | StepDict | dict[str, Any]") -> "Step":
        if isinstance(data, Step):
            return data
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def action_key(step: Step) -> tuple[str, str]:
    """A step's action compared case- and whitespace-insensitively (repetition guard and metrics)."""
    return ((step.action or "").casefold(), " ".join((step.action_input or "").casefold().split()))


@dataclass
class TrajectoryRecord:
    """A whole run: the question, what came out, every step, and what produced it."""

    question_id: str
    question: str
    status: Status
    prediction: Optional[str]
    steps: list[Step]
    gold_answer: Optional[str] = None
    scores: dict[str, float] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)
    # Every model call: {"messages": [{"role", "content"}], "output": raw text, "usage": {...}}.
    calls: list[dict[str, Any]] = field(default_factory=list)
    error: Optional[str] = None
    seconds: Optional[float] = None
    version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [s.to_dict() for s in self.steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrajectoryRecord":
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        kept["steps"] = [Step.from_dict(s) for s in data.get("steps", [])]
        return cls(**kept)


def read_trajectories(path: str | Path, *, skip_bad: bool = False,
                      bad: Optional[list[int]] = None) -> Iterator[TrajectoryRecord]:
    """Each record of a trajectories JSONL file, in order.

    Raises:
        ValueError: ``file:line`` of a line that is not a trajectory record; with ``skip_bad``
            such lines are passed over instead, their numbers appended to ``bad``.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                record = TrajectoryRecord.from_dict(json.loads(raw.decode("utf-8")))
            except (ValueError, TypeError, KeyError, AttributeError) as e:  # bad UTF-8 or JSON, wrong shape
                if not skip_bad:
                    raise ValueError(f"{path}:{lineno}: not a trajectory record ({type(e).__name__}: {e})") from None
                if bad is not None:
                    bad.append(lineno)
                continue
            yield record
