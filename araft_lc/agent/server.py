"""The graph for the LangGraph server: ``langgraph dev`` / ``langgraph up`` / LangGraph Studio
(see ``langgraph.json``, and ``make serve``).

The server runs the agent ``araft ask`` runs: the same run settings, with the same defaults (the
shipped model with the prompt it was trained on, 5 steps, 600 s per run), built by the same
factory (``araft_lc.agent.factory.build_agent``). A server takes no flags, so the settings come
from the file ``$ARAFT_CONFIG`` names (as ``araft ask --config`` reads) and from ``$ARAFT_<FIELD>``
variables (``ARAFT_CORPUS``, ``ARAFT_MODEL``, ``ARAFT_MAX_SECONDS``, ...; ``araft_lc.agent.settings``).
Without ``ARAFT_CORPUS`` it uses live Wikipedia and, as ``araft ask`` does, first checks that it
answers: where it does not, the graph does not load, and every run says so and how to build an index.

The server runs on an event loop that refuses blocking calls, so the factory is async: the model,
the index and the prompt files load in a worker thread, once per process; the graph's nodes are
async and run the model and the tools off the loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Optional

from araft_lc.agent.graph import AraftAgent

__all__ = ["make_graph", "build_graph"]

_built: Optional[AraftAgent] = None
_lock = threading.Lock()


def build_graph() -> AraftAgent:
    """The agent the environment's settings describe, built once per process (blocking).

    Raises:
        ValueError: settings that cannot run, or a corpus or live Wikipedia that is not there,
            in one line naming the fix.
    """
    global _built
    with _lock:
        if _built is None:
            from araft_lc.agent.factory import build_agent
            from araft_lc.agent.settings import RunSettings, settings_from_env

            _built = build_agent(settings_from_env(RunSettings))
        return _built


async def make_graph(config: Any = None) -> AraftAgent:
    """The LangGraph server's factory: ``build_graph`` in a worker thread."""
    return await asyncio.to_thread(build_graph)
