"""The graph for the LangGraph server: ``langgraph dev`` / ``langgraph up`` / LangGraph Studio
(see ``langgraph.json``).

Configured by environment: ``ARAFT_MODEL`` (a model spec, default ``smollm2-135m``),
``ARAFT_ADAPTER`` (a LoRA adapter folder), ``ARAFT_PROMPT`` (a prompt style, default
``fewshot``), ``ARAFT_CORPUS`` (an index or source file; unset means live Wikipedia),
``ARAFT_MAX_STEPS``, ``ARAFT_MAX_NEW_TOKENS``, ``ARAFT_REPETITION_GUARD`` (1 to turn it on).

The server runs on an event loop that refuses blocking calls, so the factory is async: the model,
the index and the prompt files load in a worker thread, once per process; the graph's nodes are
async and run the model and the tools off the loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Optional

from langgraph.graph.state import CompiledStateGraph

__all__ = ["make_graph", "build_graph"]

_built: Optional[CompiledStateGraph] = None
_lock = threading.Lock()


def build_graph() -> CompiledStateGraph:
    """The Araft agent as the environment describes it, built once per process (blocking)."""
    global _built
    with _lock:
        if _built is None:
            from araft_lc.graph import create_araft_agent
            from araft_lc.models import load_chat_model
            from araft_lc.presets import DEFAULT_MODEL, MAX_NEW_TOKENS
            from araft_lc.tools.select import wikipedia_tool

            model = load_chat_model(
                os.environ.get("ARAFT_MODEL", DEFAULT_MODEL), adapter=os.environ.get("ARAFT_ADAPTER") or None,
                max_new_tokens=int(os.environ.get("ARAFT_MAX_NEW_TOKENS", MAX_NEW_TOKENS)),
            )
            _built = create_araft_agent(
                model, [wikipedia_tool()], prompt=os.environ.get("ARAFT_PROMPT", "fewshot"),
                max_steps=int(os.environ.get("ARAFT_MAX_STEPS", "5")),
                repetition_guard=os.environ.get("ARAFT_REPETITION_GUARD") == "1",
            )
        return _built


async def make_graph(config: Any = None) -> CompiledStateGraph:
    """The LangGraph server's factory: ``build_graph`` in a worker thread."""
    return await asyncio.to_thread(build_graph)
