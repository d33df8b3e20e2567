"""What tests share besides fixtures (those are in conftest.py): paths, the Araft grammar's
steps, a scripted model at the edge of the world, tools that hang, a model folder with another
context. ``from helpers import ...``; nothing here touches the network."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Optional

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, StructuredTool, tool

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
MINI_CORPUS = TEST_DATA / "mini_corpus.jsonl"
HANG_S = 60.0  # how long a hanging tool would hold a run, unbounded


def hotpotqa_dir() -> Path:
    return Path(os.environ.get("ARAFT_DATA_DIR", ROOT.parent / "shared" / "data" / "hotpotqa"))


def act(tool: str, tool_input: str, thought: str = "look it up") -> str:
    """A model's step in the Araft grammar: a Thought, then an action of ``tool``."""
    return f"Thought: {thought}\nAction: [action: {tool}, action_input: {tool_input}]"


def answer(a: str) -> str:
    """A model's last step: the answer."""
    return act("Answer", a, thought="I know it")


def with_context(model_dir: Path, out: Path, positions: int) -> Path:
    """A copy of the model folder ``model_dir`` at ``out`` whose config gives it ``positions``
    positions of context (a Llama's rotary positions work at any length; only the check differs)."""
    shutil.copytree(model_dir, out)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "max_position_embeddings": positions}))
    return out


def hanging_tools(release: threading.Event, name: str = "Slow") -> tuple[BaseTool, BaseTool]:
    """A sync and an async tool named ``name`` that hang until ``release`` is set (at most
    ``HANG_S``), then return "late"."""

    def wait(query: str) -> str:
        release.wait(HANG_S)
        return "late"

    async def await_(query: str) -> str:
        for _ in range(int(HANG_S * 10)):
            if release.is_set():
                break
            await asyncio.sleep(0.1)
        return "late"

    return (tool(name, wait, description="Looks something up, slowly."),
            StructuredTool.from_function(coroutine=await_, name=name, description="Looks something up, slowly."))


class ScriptedChatModel(BaseChatModel):
    """A fake model at the edge of the world: it answers from a script, in order, and records
    each prompt. Like a real server it honours ``stop`` by cutting its text at the first one."""

    script: list[str]
    prompts: list[list[BaseMessage]] = []
    stops: list[Optional[list[str]]] = []
    fail_on_call: Optional[int] = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Optional[list[str]] = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        i = len(self.prompts)
        self.prompts.append(list(messages))
        self.stops.append(stop)
        if self.fail_on_call == i:
            raise RuntimeError("model server went away")
        text = self.script[min(i, len(self.script) - 1)]
        for s in stop or ():
            if s in text:
                text = text[: text.index(s)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])
