"""Prompt styles (YAML files beside this module) and the rendering of a run into chat messages.

The system turn holds the instructions, the tool list and (few-shot style) the examples. Two
layouts of the run after it:

- ``scratchpad`` (the contract of the published Araft adapters, docs/architecture.md): one user turn,
  ``Question: ...`` followed by every step so far as text;
- ``turns``: ``Question: ...`` as a user turn, then each step as an assistant turn and its
  ``Observation: ...`` as a user turn. A run is then one conversation that only grows, so a
  whole trajectory is one training record (``araft convert sft --granularity trajectory``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Optional, Sequence

import yaml
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from araft_lc.react.parser import ANSWER, format_action
from araft_lc.react.step import Step
from araft_lc.react.tool_input import ToolLike, input_hint

__all__ = [
    "PromptStyle",
    "PROMPT_STYLES",
    "STOP",
    "LAYOUTS",
    "load_prompt",
    "example_tools",
    "step_body",
    "render_step",
    "render_messages",
    "warn_prompt_mismatch",
    "DEFAULT_PROMPT",
    "trained_prompt",
    "choose_prompt",
]

_DIR = Path(__file__).parent / "prompts"
PROMPT_STYLES = tuple(sorted(p.stem for p in _DIR.glob("*.yaml")))
# The model writes one Thought and one Action; the observation is ours to write.
STOP = ("Observation:",)
LAYOUTS = ("scratchpad", "turns")


@dataclass(frozen=True)
class PromptStyle:
    """A prompt style: ``system`` has ``{tools}`` and ``{examples}`` slots; ``layout`` in LAYOUTS."""

    name: str
    version: str
    system: str
    examples: tuple[str, ...]
    layout: str = "scratchpad"

    def render_system(self, tools: Sequence[ToolLike]) -> str:
        """The system turn for ``tools``: each tool with its input and description, and the
        examples that use only these tools (a model copies the tools an example shows). When no
        example fits, the zero-shot instructions are used instead."""
        tool_lines = "\n".join(
            f"{format_action(t.name, input_hint(t))}: {' '.join(t.description.split())}" for t in tools
        )
        names = {t.name.casefold() for t in tools} | {ANSWER.casefold()}
        examples = [e for e in self.examples if example_tools(e) <= names]
        system = self.system
        if self.examples and not examples:
            system = load_prompt("zeroshot").system
        return system.format(tools=tool_lines, examples="\n\n".join(examples))


_EXAMPLE_ACTION = re.compile(r"\[action:\s*([^,\]]+?)\s*,", re.IGNORECASE)


def example_tools(example: str) -> set[str]:
    """The tool names an example's actions use, casefolded (``Answer`` included)."""
    return {m.group(1).casefold() for m in _EXAMPLE_ACTION.finditer(example)}


@cache
def load_prompt(name: str = "fewshot") -> PromptStyle:
    """Load a prompt style by name (see ``PROMPT_STYLES``) or from a YAML file path.

    A file may name a ``base`` style and set only the fields that differ from it.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else _DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown prompt style {name!r}: use one of {', '.join(PROMPT_STYLES)} or a YAML file path")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"prompt file {path} is not a YAML mapping of name, version, system, ...")
    if "base" in data:  # inherit every field the file does not set
        base = load_prompt(data.pop("base"))
        data = {"system": base.system, "examples": list(base.examples), "layout": base.layout, **data}
    missing = {"name", "version", "system"} - set(data)
    if missing:
        raise ValueError(f"prompt file {path} lacks {', '.join(sorted(missing))}")
    layout = data.get("layout", "scratchpad")
    if layout not in LAYOUTS:
        raise ValueError(f"prompt file {path}: layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    return PromptStyle(data["name"], data["version"], data["system"], tuple(data.get("examples") or ()), layout)


def warn_prompt_mismatch(prompt: str | PromptStyle, trained: Optional[str], what: str) -> None:
    """Warn when ``prompt`` is not the style ``trained`` (the one ``what`` was trained with, where
    known): a fine-tuned model run with another prompt than its own loses much of what it learned
    (the shipped adapter loses over half its F1 with ``fewshot``: docs/python-api.md)."""
    if not trained:
        return
    try:
        given, own = (prompt if isinstance(prompt, PromptStyle) else load_prompt(prompt)), load_prompt(trained)
    except ValueError:
        return  # a style that does not load fails where it is used, with its own message
    if given.version != own.version:
        warnings.warn(
            f"{what} was trained with the {own.name!r} prompt ({own.version}) but runs with "
            f"{given.name!r} ({given.version}): leave prompt unset to use its own",
            UserWarning,
            stacklevel=3,
        )


DEFAULT_PROMPT = "fewshot"  # for a model that carries no prompt style of its own
# Where a trained adapter folder records the prompt style of its records (``araft train`` writes it).
DATA_CARD = "data.json"


def trained_prompt(adapter: Optional[str]) -> Optional[str]:
    """The prompt style an adapter was trained with, as its folder records it (``data.json``'s
    ``prompt_style``, written by ``araft train``); None when it is not a local folder or records
    none (an adapter trained before it was recorded, or on records of several styles)."""
    if not adapter:
        return None
    import json

    card = Path(adapter).expanduser() / DATA_CARD
    try:
        style = json.loads(card.read_text(encoding="utf-8")).get("prompt_style")
    except (OSError, ValueError, AttributeError):
        return None
    return style if isinstance(style, str) and style else None


def choose_prompt(
    asked: Optional[str | PromptStyle],
    *,
    trained: Optional[str] = None,
    carried: Optional[str] = None,
    owner: str = "the model's adapter",
) -> str | PromptStyle:
    """The prompt style a run uses, one rule for the chat model and the agent: ``asked`` where
    given (a warning when ``trained``, the style ``owner``'s records rendered, is another); else
    ``carried``, the style a model carries, where it names one (another model's ``prompt`` field
    may mean something else: passed over); else ``trained``; else ``DEFAULT_PROMPT``. Returned as
    it was named (a style, a YAML file, a ``PromptStyle``), checked to load.

    Raises:
        ValueError: ``asked`` or ``trained`` names no style, in one line, now rather than at the
            first call.
    """
    if asked is not None:
        style = asked if isinstance(asked, PromptStyle) else load_prompt(asked)
        warn_prompt_mismatch(style, trained, owner)
        return asked
    if isinstance(carried, str) and carried:
        try:
            load_prompt(carried)
            return carried
        except ValueError:
            pass
    chosen = trained or DEFAULT_PROMPT
    load_prompt(chosen)
    return chosen


def step_body(step: Step) -> str:
    """What the model wrote in a step, normalised: its Thought and Action (or, if it did not
    parse, its output as is, so the model can see what to fix)."""
    if step.action is None:
        return step.raw.strip()
    return f"Thought: {step.thought}\nAction: {format_action(step.action, step.action_input or '')}"


def render_step(step: Step) -> str:
    """One step of the scratchpad, as the model sees it on its next turn."""
    if step.observation is None:
        return step_body(step)
    return f"{step_body(step)}\nObservation: {step.observation}"


def render_user(question: str, steps: Sequence[Step]) -> str:
    return "\n".join([f"Question: {question}", *(render_step(s) for s in steps)])


def render_messages(
    style: PromptStyle, tools: Sequence[ToolLike], question: str, steps: Sequence[Step]
) -> list[BaseMessage]:
    """The chat messages for the next model call."""
    system = SystemMessage(style.render_system(tools))
    if style.layout == "scratchpad":
        return [system, HumanMessage(render_user(question, steps))]
    messages: list[BaseMessage] = [system, HumanMessage(f"Question: {question}")]
    for step in steps:
        messages.append(AIMessage(step_body(step)))
        if step.observation is not None:
            messages.append(HumanMessage(f"Observation: {step.observation}"))
    return messages
