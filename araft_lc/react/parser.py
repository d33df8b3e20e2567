"""The Araft action grammar: one model output in, one Action, Answer or ParseError out.

The grammar is the one the published Araft adapters were trained on::

    Thought: <free text>
    Action: [action: <tool name>, action_input: <text>]

with ``Answer`` as the tool name that ends the episode. :func:`parse` is total: any string yields
a value, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Union

__all__ = ["ANSWER", "Action", "Answer", "ParseError", "Parsed", "parse", "format_action"]

ANSWER = "Answer"

_THOUGHT = re.compile(r"thought\s*:\s*(.*?)(?=\baction\s*:|\Z)", re.IGNORECASE | re.DOTALL)
# `Action:` then an optional `[`, the name up to a comma, then the input up to the end of the line.
_ACTION = re.compile(
    r"action\s*:\s*\[?\s*(?:action\s*:\s*)?(?P<name>[^,\[\]\n]*?)\s*,\s*"
    r"action[ _]?input\s*:\s*(?P<input>[^\n]*)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Action:
    """A call of a tool: ``tool`` is the canonical tool name when the model named a known one."""

    tool: str
    tool_input: str
    thought: str


@dataclass(frozen=True)
class Answer:
    """The final answer."""

    answer: str
    thought: str


@dataclass(frozen=True)
class ParseError:
    """Output that holds no usable action; ``reason`` is shown to the model as its observation."""

    reason: str
    thought: str


Parsed = Union[Action, Answer, ParseError]


def format_action(tool: str, tool_input: str) -> str:
    """Render an action in the canonical grammar (without the ``Action:`` label)."""
    return f"[action: {tool}, action_input: {tool_input}]"


def _strip_input(raw: str) -> str:
    text = raw.strip()
    # The closing bracket is the last `]` of the line; anything after it is trailing chatter.
    close = text.rfind("]")
    if close != -1:
        text = text[:close]
    return text.strip().strip('"').strip()


def parse(text: str, tool_names: Iterable[str] = ("Wikipedia",)) -> Parsed:
    """Parse one model output.

    Args:
        text: the raw model text (it may hold trailing text, a missing ``]``, odd spacing or case).
        tool_names: the tools the agent was given; names match case-insensitively and come back
            canonical. An unknown name still yields an :class:`Action` (the act node answers it).

    Returns:
        An :class:`Action`, an :class:`Answer` or a :class:`ParseError` with a reason.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    thought_match = _THOUGHT.search(text)
    thought = " ".join(thought_match.group(1).split()) if thought_match else ""
    match = _ACTION.search(text)
    if match is None:
        if not text.strip():
            return ParseError("The output was empty. Write a Thought, then an Action.", thought)
        return ParseError(
            f"No action found. Write the action as Action: {format_action('<tool>', '<input>')}.",
            thought,
        )
    name = " ".join(match.group("name").split())
    tool_input = _strip_input(match.group("input"))
    if not name:
        return ParseError("The action names no tool.", thought)
    if not tool_input:
        return ParseError(f"The action {name} has an empty action_input.", thought)
    if name.casefold() == ANSWER.casefold():
        return Answer(tool_input, thought)
    canonical = {n.casefold(): n for n in tool_names}
    return Action(canonical.get(name.casefold(), name), tool_input, thought)
