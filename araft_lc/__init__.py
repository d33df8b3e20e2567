"""Araft: a small ReAct agent over Wikipedia, as a LangGraph state machine.

Heavy dependencies (torch, transformers, peft) load only when a chat model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AraftChatModel",
    "AgentState",
    "TrajectoryRecord",
    "Step",
    "WikipediaTool",
    "create_araft_agent",
    "parse",
    "__version__",
]

_LAZY = {
    "AraftChatModel": "araft_lc.chat_model",
    "AgentState": "araft_lc.graph",
    "create_araft_agent": "araft_lc.graph",
    "TrajectoryRecord": "araft_lc.trajectory",
    "Step": "araft_lc.trajectory",
    "WikipediaTool": "araft_lc.tools.wikipedia",
    "parse": "araft_lc.parser",
}

if TYPE_CHECKING:
    from araft_lc.chat_model import AraftChatModel
    from araft_lc.graph import AgentState, create_araft_agent
    from araft_lc.parser import parse
    from araft_lc.tools.wikipedia import WikipediaTool
    from araft_lc.trajectory import Step, TrajectoryRecord


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'araft_lc' has no attribute {name!r}")
