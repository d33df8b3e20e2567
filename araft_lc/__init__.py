"""Araft: a small ReAct agent over Wikipedia, as a LangGraph state machine.

Everything a user builds an agent from is importable from here. Heavy dependencies (torch,
transformers, peft) load only when a chat model is built: each name imports its module on first
use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from araft_lc.version import __version__

__all__ = [
    "create_araft_agent",
    "build_agent",
    "RunSettings",
    "AgentInput",
    "AgentOutput",
    "AgentState",
    "AraftChatModel",
    "load_chat_model",
    "ModelSpec",
    "load_causal_lm",
    "WikipediaTool",
    "LocalWikipedia",
    "LiveWikipedia",
    "wikipedia_tool",
    "TrajectoryRecorder",
    "JsonlTraceHandler",
    "load_prompt",
    "PromptStyle",
    "Step",
    "TrajectoryRecord",
    "parse",
    "__version__",
]

_LAZY = {
    "create_araft_agent": "araft_lc.agent.graph",
    "build_agent": "araft_lc.agent.factory",
    "RunSettings": "araft_lc.agent.settings",
    "AgentInput": "araft_lc.agent.graph",
    "AgentOutput": "araft_lc.agent.graph",
    "AgentState": "araft_lc.agent.graph",
    "AraftChatModel": "araft_lc.chat.chat_model",
    "load_chat_model": "araft_lc.chat.model_spec",
    "ModelSpec": "araft_lc.chat.model_spec",
    "load_causal_lm": "araft_lc.runtime.torch.causal_lm",
    "WikipediaTool": "araft_lc.wiki.wikipedia",
    "LocalWikipedia": "araft_lc.wiki.wikipedia",
    "LiveWikipedia": "araft_lc.wiki.live_wikipedia",
    "wikipedia_tool": "araft_lc.wiki.select",
    "TrajectoryRecorder": "araft_lc.agent.recorder",
    "JsonlTraceHandler": "araft_lc.agent.tracing",
    "load_prompt": "araft_lc.react.prompt",
    "PromptStyle": "araft_lc.react.prompt",
    "Step": "araft_lc.react.trajectory",
    "TrajectoryRecord": "araft_lc.react.trajectory",
    "parse": "araft_lc.react.parser",
}

if TYPE_CHECKING:
    from araft_lc.agent.factory import build_agent
    from araft_lc.agent.graph import AgentInput, AgentOutput, AgentState, create_araft_agent
    from araft_lc.agent.recorder import TrajectoryRecorder
    from araft_lc.agent.settings import RunSettings
    from araft_lc.agent.tracing import JsonlTraceHandler
    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.chat.model_spec import ModelSpec, load_chat_model
    from araft_lc.react.parser import parse
    from araft_lc.react.prompt import PromptStyle, load_prompt
    from araft_lc.react.trajectory import Step, TrajectoryRecord
    from araft_lc.runtime.torch.causal_lm import load_causal_lm
    from araft_lc.wiki.live_wikipedia import LiveWikipedia
    from araft_lc.wiki.select import wikipedia_tool
    from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'araft_lc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
