"""Prompt styles (YAML files beside this module) and the rendering of a run into chat messages.

The system turn holds the instructions, the tool list and (few-shot style) the examples; the user
turn is ``Question: ...`` followed by the scratchpad of the steps so far. This is the contract of
the published Araft adapters (ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import yaml
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool

from araft_lc.parser import format_action
from araft_lc.trajectory import Step

__all__ = ["PromptStyle", "PROMPT_STYLES", "STOP", "load_prompt", "render_step", "render_messages"]

_DIR = Path(__file__).parent / "prompts"
PROMPT_STYLES = tuple(sorted(p.stem for p in _DIR.glob("*.yaml")))
# The model writes one Thought and one Action; the observation is ours to write.
STOP = ("Observation:",)


@dataclass(frozen=True)
class PromptStyle:
    """A prompt style: ``system`` has ``{tools}`` and ``{examples}`` slots."""

    name: str
    version: str
    system: str
    examples: tuple[str, ...]

    def render_system(self, tools: Sequence[BaseTool]) -> str:
        tool_lines = "\n".join(
            f"{format_action(t.name, '<input>')}: {' '.join(t.description.split())}" for t in tools
        )
        return self.system.format(tools=tool_lines, examples="\n\n".join(self.examples))


@lru_cache(maxsize=None)
def load_prompt(name: str = "fewshot") -> PromptStyle:
    """Load a prompt style by name (see ``PROMPT_STYLES``) or from a YAML file path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else _DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(
            f"unknown prompt style {name!r}: use one of {', '.join(PROMPT_STYLES)} or a YAML file path"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = {"name", "version", "system"} - set(data or {})
    if missing:
        raise ValueError(f"prompt file {path} lacks {', '.join(sorted(missing))}")
    return PromptStyle(data["name"], data["version"], data["system"], tuple(data.get("examples") or ()))


def render_step(step: Step) -> str:
    """One step of the scratchpad, as the model sees it on its next turn."""
    if step.action is None:
        # Show the malformed output itself, so the model can see what to fix.
        body = step.raw.strip()
    else:
        body = f"Thought: {step.thought}\nAction: {format_action(step.action, step.action_input or '')}"
    if step.observation is None:
        return body
    return f"{body}\nObservation: {step.observation}"


def render_user(question: str, steps: Sequence[Step]) -> str:
    return "\n".join([f"Question: {question}", *(render_step(s) for s in steps)])


def render_messages(
    style: PromptStyle, tools: Sequence[BaseTool], question: str, steps: Sequence[Step]
) -> list[BaseMessage]:
    """The chat messages for the next model call."""
    return [
        SystemMessage(style.render_system(tools)),
        HumanMessage(render_user(question, steps)),
    ]
