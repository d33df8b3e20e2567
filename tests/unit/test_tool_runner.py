"""Tools bounded in time and size: a user's tool that hangs or floods cannot hold a run past its
deadline or fill its prompt (the agent's side of it is in test_graph_bounds.py)."""

import asyncio
import threading
import time

import pytest
from helpers import HANG_S, hanging_tools
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool

from araft_lc.agent.tool_runner import ToolTimeout, arun_tool, cap_observation, render_output, run_tool


def test_a_sync_tool_that_hangs_is_abandoned_at_its_timeout(hanging):
    hangs, _, release = hanging
    start = time.monotonic()
    with pytest.raises(ToolTimeout, match="Slow timed out after 0.3 s"):
        run_tool(hangs, "x", {}, timeout=0.3)
    assert time.monotonic() - start < HANG_S / 2  # it returned, long before the tool would have
    release.set()
    assert run_tool(hangs, "x", {}, timeout=5) == "late" and run_tool(hangs, "x", {}, timeout=None) == "late"


@pytest.mark.parametrize("sync", [True, False])
def test_the_timeout_fires_before_the_tool_answers(sync):
    """A tool that answers at 2 s, under a 0.3 s timeout: a timeout that fired seven or ten times
    late would let the answer through. The order of two events, not a wall-clock bar."""
    release = threading.Event()
    hangs, ahangs = hanging_tools(release, hang_s=2.0)
    try:
        with pytest.raises(ToolTimeout, match="Slow timed out after 0.3 s"):
            if sync:
                run_tool(hangs, "x", {}, timeout=0.3)
            else:
                asyncio.run(arun_tool(ahangs, "x", {}, timeout=0.3))
    finally:
        release.set()


def test_an_async_tool_is_cancelled_at_its_timeout(hanging):
    hangs, _, release = hanging
    cancelled = [threading.Event() for _ in range(2)]
    ahangs = [hanging_tools(release, cancelled=c)[1] for c in cancelled]

    async def under_ainvoke():
        with pytest.raises(ToolTimeout, match="Slow timed out"):
            await arun_tool(ahangs[1], "x", {}, timeout=0.3)
        await asyncio.sleep(0)  # one turn of the caller's loop: the cancelled task has run its except
        assert cancelled[1].is_set()  # cancelled at the timeout, not left running on the caller's loop
        with pytest.raises(ToolTimeout, match="Slow timed out"):  # a sync tool under ainvoke()
            await arun_tool(hangs, "x", {}, timeout=0.3)
        release.set()  # (so that asyncio.run's executor shutdown does not wait on the abandoned thread)

    start = time.monotonic()
    with pytest.raises(ToolTimeout, match="Slow timed out"):
        run_tool(ahangs[0], "x", {}, timeout=0.3)  # under invoke(): a loop of its own
    asyncio.run(under_ainvoke())
    assert time.monotonic() - start < HANG_S / 2
    assert cancelled[0].is_set()  # and on a loop of its own
    assert asyncio.run(arun_tool(ahangs[0], "x", {}, timeout=5)) == "late"


def test_a_tools_own_errors_and_timeouts_stay_its_own():
    @tool
    def fails(query: str) -> str:
        """Fails."""
        raise TimeoutError("the tool's own network timeout")

    with pytest.raises(TimeoutError, match="own network timeout"):
        run_tool(fails, "x", {}, timeout=5)
    with pytest.raises(TimeoutError, match="own network timeout"):
        asyncio.run(arun_tool(fails, "x", {}, timeout=5))


def test_outputs_of_any_type_render_as_text():
    assert render_output("text") == "text"
    assert render_output(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert render_output({"a": 1, "b": ["é"]}) == '{"a": 1, "b": ["é"]}'
    assert render_output([1, 2]) == "[1, 2]"
    assert render_output(ToolMessage("from a message", tool_call_id="c")) == "from a message"
    # what LangChain puts in a ToolMessage for a tool's bytes and list of strings
    assert render_output(ToolMessage(str(b"caf\xc3\xa9"), tool_call_id="c")) == "café"
    assert render_output(ToolMessage(["a", "b"], tool_call_id="c")) == '["a", "b"]'
    assert render_output(ToolMessage([{"type": "text", "text": "blocks"}], tool_call_id="c")) == "blocks"
    assert render_output(ToolMessage("b'not a literal", tool_call_id="c")) == "b'not a literal"
    assert render_output(42) == "42"


def test_observations_are_cut_at_a_word_with_a_mark_and_their_length():
    assert cap_observation("  short \n text ", 600) == ("short text", None)
    flood = "word " * 1_000_000  # 5,000,000 characters
    text, original = cap_observation(flood, 600)
    assert original == 4_999_999 and len(text) <= 600
    assert text.endswith("word ... [cut: 4,999,999 characters]") and "wor ..." not in text
    assert cap_observation("x" * 700, 600)[0].endswith("x ... [cut: 700 characters]")  # one long word: cut inside it
    assert cap_observation(flood, None) == (" ".join(flood.split()), None)


def test_a_tool_given_no_time_is_not_started():
    calls = []

    @tool
    def counted(query: str) -> str:
        """Counts its calls."""
        calls.append(query)
        return "ran"

    with pytest.raises(ToolTimeout, match="counted timed out after 0.0 s"):
        run_tool(counted, "x", {}, timeout=0)
    with pytest.raises(ToolTimeout, match="counted timed out after 0.0 s"):
        asyncio.run(arun_tool(counted, "x", {}, timeout=0.0))
    assert calls == []
