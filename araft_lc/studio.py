"""The graph for ``langgraph dev`` / LangGraph Studio (see ``langgraph.json``).

Configured by environment: ``ARAFT_MODEL`` (a model spec, default ``smollm2-135m``),
``ARAFT_CORPUS`` (an index or source file; unset means live Wikipedia), ``ARAFT_MAX_STEPS``,
``ARAFT_REPETITION_GUARD`` (1 to turn it on).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from langgraph.graph.state import CompiledStateGraph

__all__ = ["make_graph"]


@lru_cache(maxsize=1)
def _graph() -> CompiledStateGraph:
    from araft_lc.graph import create_araft_agent
    from araft_lc.models import load_chat_model
    from araft_lc.tools.select import wikipedia_tool

    model = load_chat_model(os.environ.get("ARAFT_MODEL", "smollm2-135m"))
    return create_araft_agent(
        model, [wikipedia_tool()], max_steps=int(os.environ.get("ARAFT_MAX_STEPS", "5")),
        repetition_guard=os.environ.get("ARAFT_REPETITION_GUARD") == "1",
    )


def make_graph(config: Any = None) -> CompiledStateGraph:
    """The Araft agent, built once per process (the model loads on the first call)."""
    return _graph()
