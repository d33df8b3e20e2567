"""The tools a run's settings name: the Wikipedia tool, ``module:attribute`` references to any
LangChain tool, and MCP servers (through ``langchain-mcp-adapters``), for ``araft ask``,
``generate``, ``eval`` and the server alike (``araft_lc.agent.factory.settings_tools``).

A reference names a ``BaseTool`` (``@tool`` functions are), a list of them, or a function of no
arguments that returns one or a list. An MCP config is a JSON or YAML file mapping server names
to ``langchain-mcp-adapters`` connections (``{"calc": {"transport": "stdio", "command": "python",
"args": ["server.py"]}}``), optionally under ``mcpServers`` as other MCP clients write it.
"""

from __future__ import annotations

import builtins
import importlib
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool

from araft_lc.storage.error_text import error_text

__all__ = ["ToolRefError", "load_mcp_tools", "load_tool_ref"]


class ToolRefError(ValueError):
    """A tool reference or MCP config that names no usable tools; the message says what to pass."""


def load_tool_ref(ref: str) -> list[BaseTool]:
    """The tools ``ref`` (``module:attribute``) names.

    Raises:
        ToolRefError: not ``module:attribute``, a module that does not import, a missing attribute,
            or one that is no tool, list of tools, or function returning them.
    """
    module_name, sep, attribute = ref.partition(":")
    if not sep or not module_name or not attribute:
        raise ToolRefError(f"--tool {ref!r}: write MODULE:ATTRIBUTE, e.g. my_tools:calculator")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ToolRefError(
            f"--tool {ref!r}: module {module_name!r} does not import ({error_text(e)}): is it on PYTHONPATH?"
        ) from None
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ToolRefError(f"--tool {ref!r}: {module_name} has no attribute {attribute!r}")
        value = getattr(value, part)
    if callable(value) and not isinstance(value, BaseTool):
        try:
            value = value()
        except Exception as e:
            raise ToolRefError(
                f"--tool {ref!r}: calling {attribute}() failed ({error_text(e)}): name a tool, or a "
                "function of no arguments that returns tools"
            ) from None
    tools = [value] if isinstance(value, BaseTool) else list(value) if isinstance(value, (list, tuple)) else None
    if not tools or not all(isinstance(t, BaseTool) for t in tools):
        raise ToolRefError(
            f"--tool {ref!r} is a {type(value).__name__}, not a LangChain tool: name a tool (@tool), "
            "a list of tools, or a function returning them"
        )
    return tools


def _connections(path: Path) -> dict[str, Any]:
    """The ``{server: connection}`` mapping of an MCP config file (JSON or YAML)."""
    from araft_lc.storage.config_file import read_config

    config = read_config(path)  # JSON is YAML; a file that is neither is one line
    servers = config.get("mcpServers", config)
    if not isinstance(servers, dict) or not servers or not all(isinstance(v, dict) for v in servers.values()):
        raise ToolRefError(
            f"{path}: expected a mapping of server names to connections, e.g. "
            '{"calc": {"transport": "stdio", "command": "python", "args": ["server.py"]}}'
        )
    return {
        name: {"transport": "stdio", **conn} if "command" in conn and "transport" not in conn else dict(conn)
        for name, conn in servers.items()
    }


def load_mcp_tools(path: str | Path) -> list[BaseTool]:
    """The tools of every MCP server in the config file ``path`` (each call opens a session).

    Raises:
        ToolRefError: no such file, a config that is no mapping of servers, langchain-mcp-adapters
            missing, or a server that does not start or list its tools.
    """
    import asyncio

    path = Path(path)
    if not path.is_file():
        raise ToolRefError(f"MCP config {path} does not exist: pass a JSON or YAML file of servers")
    connections = _connections(path)
    try:
        from langchain_mcp_adapters.client import MultiServerMCPClient
    except ImportError:
        raise ToolRefError("MCP tools need langchain-mcp-adapters: pip install 'araft[langchain]'") from None
    try:
        return asyncio.run(MultiServerMCPClient(connections).get_tools())
    except Exception as e:
        groups = getattr(builtins, "BaseExceptionGroup", ())  # Python 3.11+: anyio raises groups
        while groups and isinstance(e, groups) and e.exceptions:
            e = e.exceptions[0]
        raise ToolRefError(
            f"MCP config {path}: the servers did not list their tools ({error_text(e)}): check each server's command"
        ) from None
