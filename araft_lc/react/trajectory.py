"""The trajectory record: one question run by the agent, as plain JSON.

Evals write it, finetune reads it, and nothing else is needed to rebuild an SFT or DPO record
from it (docs/architecture.md): like smolagents' memory steps, the record turns itself into the
chat turns the model saw (``to_messages``), so training prompts are inference prompts. Each
record carries the ``version`` of its format; a reader refuses a newer one, and a record
without one (written before versions) is version 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Literal, Optional, Sequence, Union

from langchain_core.tools import BaseTool

from araft_lc.react.chat_format import Turn, to_turns
from araft_lc.react.parser import ANSWER
from araft_lc.react.prompt import PromptStyle, load_prompt, render_messages
from araft_lc.react.step import Step, StepDict, StepError, action_key
from araft_lc.react.tool_input import json_schema, named_no_tool
from araft_lc.storage.jsonl import JsonlError, read_jsonl

__all__ = [
    "Status",
    "StepError",
    "Step",
    "StepDict",
    "TrajectoryRecord",
    "RECORD_VERSION",
    "ToolCard",
    "action_key",
    "check_version",
    "read_trajectories",
]

# 2: the record keeps the cards of the run's tools (``tools``); a version 1 record ran the Wikipedia tool.
RECORD_VERSION = 2

# "error": the run itself failed (the model server kept failing); no steps may follow.
# "recursion_limit": the caller's LangGraph recursion_limit ended the run before max_steps did.
Status = Literal[
    "running",
    "answered",
    "step_limit",
    "time_limit",
    "recursion_limit",
    "parse_error",
    "tool_error",
    "context_limit",
    "error",
]


def check_version(data: dict[str, Any], newest: int, what: str) -> int:
    """The format version of a record (1 when it has none: written before versions).

    Raises:
        ValueError: a version this code does not know (newer, or not a whole number), with the fix.
    """
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= newest:
        raise ValueError(
            f"{what} version {version!r}, but this araft reads versions 1 to {newest}: "
            "upgrade araft, or convert the file again with this one"
        )
    return version


@dataclass(frozen=True)
class ToolCard:
    """What a prompt shows of a tool (its name, description and arguments' JSON schema): enough
    to render a recorded run's system turn without building the tool."""

    name: str
    description: str
    tool_call_schema: dict[str, Any]

    @classmethod
    def of(cls, tool: BaseTool | type[BaseTool]) -> ToolCard:
        """The card of a tool, or of a tool class from its defaults (no instance, no backend)."""
        if isinstance(tool, type):
            defaults = tool.model_fields
            schema = defaults["args_schema"].default
            return cls(defaults["name"].default, defaults["description"].default, json_schema(schema))
        return cls(tool.name, tool.description, json_schema(tool.tool_call_schema))


@lru_cache(maxsize=1)
def _wikipedia() -> ToolCard:
    from araft_lc.wiki.wikipedia import WikipediaTool

    return ToolCard.of(WikipediaTool)


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
    # Self-consistency (``samples`` > 1): the vote, and every run (its decoding, answer, status,
    # steps and scores); ``steps`` and ``prediction`` are then the winning run's.
    vote: Optional[dict[str, Any]] = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    # The cards of the run's tools as ``ToolCard`` dicts, in the order its prompt listed them;
    # empty: the Wikipedia tool (every version 1 record).
    tools: list[dict[str, Any]] = field(default_factory=list)
    version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [s.to_dict() for s in self.steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrajectoryRecord:
        """The record of its JSON data.

        Raises:
            ValueError: a format version this code does not read.
            TypeError: a required field is missing.
        """
        version = check_version(data, RECORD_VERSION, "a trajectory record of")
        names = {f.name for f in fields(cls)}
        kept = {**{k: v for k, v in data.items() if k in names}, "version": version}
        kept["steps"] = [Step.from_dict(s) for s in data.get("steps", [])]
        return cls(**kept)

    def tool_cards(self) -> list[ToolCard]:
        """The cards of the run's tools, as its prompt listed them (the Wikipedia tool's for a
        record that keeps none)."""
        return [ToolCard(**card) for card in self.tools] if self.tools else [_wikipedia()]

    def unlisted_tool(self) -> Optional[str]:
        """The first tool a step called and ran that the record's tools do not list (None: every
        one is listed): a run recorded without its tools, say, would convert to prompts that list
        other tools than its steps call. A step that named no tool of the run (its observation
        says so) is the model's mistake, recorded as it was, and not counted."""
        names = {card.name.casefold() for card in self.tool_cards()} | {ANSWER.casefold()}
        return next(
            (
                s.action
                for s in self.steps
                if s.action and s.action.casefold() not in names and not named_no_tool(s.observation, s.action)
            ),
            None,
        )

    def to_messages(
        self,
        style: Union[str, PromptStyle] = "fewshot",
        upto: Optional[int] = None,
        tools: Optional[Sequence[Union[BaseTool, ToolCard]]] = None,
    ) -> list[Turn]:
        """The chat turns of the run in a prompt style: what the model saw before step ``upto``
        (None: the whole run, its last step included), rendered exactly as the agent renders them.

        Args:
            style: a prompt style or its name (``load_prompt``).
            upto: the step the turns lead up to.
            tools: the tools the system turn lists (tools or their cards); None: the run's own
                (``tool_cards``).
        """
        style = load_prompt(style) if isinstance(style, str) else style
        steps = self.steps if upto is None else self.steps[:upto]
        cards = tools or self.tool_cards()
        return to_turns(render_messages(style, cards, self.question, steps))


def read_trajectories(
    path: str | Path, *, skip_bad: bool = False, bad: Optional[list[int]] = None
) -> Iterator[TrajectoryRecord]:
    """Each record of a trajectories JSONL file, in order (``araft_lc.storage.jsonl``'s error policy).

    Raises:
        JsonlError: ``file:line`` of a line that is not a trajectory record; with ``skip_bad``
            such lines are passed over instead, their numbers appended to ``bad``.
    """

    def skip(error: JsonlError) -> None:
        if bad is not None:
            bad.append(error.lineno)

    for _, record in read_jsonl(
        path, TrajectoryRecord.from_dict, what="a trajectory record", on_bad=skip if skip_bad else None
    ):
        yield record
