"""One tool call of the agent, bounded in time and in size, whatever the tool.

- **Time.** A call gets at most ``timeout`` seconds: the per-tool timeout or what is left of the
  run's deadline, whichever is sooner. An async tool is cancelled. A sync tool runs in a thread
  of its own; one that overruns is abandoned (Python cannot kill a thread: it finishes, or hangs,
  on its own, and its late result is thrown away, never reaching the run). Either way the call
  raises ``ToolTimeout``.
- **Size.** Whatever the tool returns (text, a ``ToolMessage``, bytes, a dict, a list) is rendered
  as text and cut to ``max_chars`` at a word boundary, with a visible mark that says how long it
  was (``cap_observation``).
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import json
import threading
from typing import Any, Callable, Optional, TypeVar

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool

from araft_lc.react.chat_format import message_text

__all__ = ["ToolTimeout", "run_tool", "arun_tool", "render_output", "cap_observation", "is_async_only"]

T = TypeVar("T")


class ToolTimeout(Exception):
    """A tool call that did not finish within its time."""

    def __init__(self, tool: str, seconds: float):
        super().__init__(f"{tool} timed out after {seconds:.1f} s")
        self.tool, self.seconds = tool, seconds


def is_async_only(tool: BaseTool) -> bool:
    """A tool with a coroutine and no function (as MCP tools arrive)."""
    return isinstance(tool, StructuredTool) and tool.func is None and tool.coroutine is not None


def _in_thread(work: Callable[[], T], timeout: float, tool: str) -> T:
    """``work()`` in a daemon thread (with this context's variables), waited for ``timeout`` s."""
    box: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box["out"] = context.run(work)
        except BaseException as e:
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=target, name=f"araft-tool-{tool}", daemon=True).start()
    if not done.wait(timeout):
        raise ToolTimeout(tool, timeout)  # the thread is abandoned; what it returns is dropped
    if "error" in box:
        raise box["error"]
    return box["out"]


async def _bounded(awaitable: Any, timeout: Optional[float], tool: str) -> Any:
    """Await with a timeout that is ours (a tool's own TimeoutError stays the tool's)."""
    if timeout is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=max(timeout, 0.0))
    if not done:
        task.cancel()
        raise ToolTimeout(tool, timeout)
    return task.result()


def run_tool(tool: BaseTool, tool_input: Any, config: RunnableConfig, timeout: Optional[float]) -> Any:
    """``tool``'s output for ``tool_input``, within ``timeout`` seconds (None: unbounded; 0: no
    time is left, and the tool is not started).

    Raises:
        ToolTimeout: the call took longer; whatever the tool raised, as it raised it.
    """
    if timeout is not None and timeout <= 0:
        raise ToolTimeout(tool.name, 0.0)
    if is_async_only(tool):  # under invoke(): on an event loop of its own, cancelled at the timeout
        return _in_thread(
            lambda: asyncio.run(_bounded(tool.ainvoke(tool_input, config), timeout, tool.name)),
            float("inf") if timeout is None else timeout + 1.0,
            tool.name,
        )
    if timeout is None:
        return tool.invoke(tool_input, config)
    return _in_thread(lambda: tool.invoke(tool_input, config), timeout, tool.name)


async def arun_tool(tool: BaseTool, tool_input: Any, config: RunnableConfig, timeout: Optional[float]) -> Any:
    """``run_tool`` on the event loop: an async tool is cancelled at the timeout; a sync one runs
    in LangChain's executor thread, which is abandoned as ``run_tool`` abandons its own."""
    if timeout is not None and timeout <= 0:
        raise ToolTimeout(tool.name, 0.0)
    return await _bounded(tool.ainvoke(tool_input, config), timeout, tool.name)


def render_output(output: Any) -> str:
    """A tool's output as the text of an observation: a message's text, bytes decoded (UTF-8,
    undecodable bytes replaced), a dict or list as JSON, anything else as ``str``.

    A tool called with a tool call answers with a ``ToolMessage`` whose content LangChain made:
    a dict as JSON, a list as it is (content blocks, or the tool's own list of strings), bytes as
    their Python literal (``b'...'``), which is read back into bytes here."""
    if isinstance(output, ToolMessage):
        if isinstance(output.content, list) and any(isinstance(b, dict) and "type" in b for b in output.content):
            return message_text(output)  # content blocks: their text
        output = output.content
        if isinstance(output, str) and output[:2] in ("b'", 'b"'):
            try:
                output = ast.literal_eval(output)
            except (ValueError, SyntaxError):
                pass
    if isinstance(output, (bytes, bytearray)):
        return bytes(output).decode("utf-8", errors="replace")
    if isinstance(output, (dict, list, tuple)):
        return json.dumps(output, ensure_ascii=False, default=str)
    return str(output)


def cap_observation(text: str, max_chars: Optional[int]) -> tuple[str, Optional[int]]:
    """``text`` whitespace-normalised and, when longer than ``max_chars``, cut at a word boundary
    to at most ``max_chars`` with the mark ``... [cut: N characters]``; and the length before the
    cut (None when nothing was cut)."""
    text = " ".join(text.split())
    if max_chars is None or len(text) <= max_chars:
        return text, None
    mark = f" ... [cut: {len(text):,} characters]"
    room = max(max_chars - len(mark), 0)
    kept = text[: room + 1].rsplit(" ", 1)[0] if " " in text[: room + 1] else text[:room]
    return kept[:room].rstrip() + mark, len(text)
