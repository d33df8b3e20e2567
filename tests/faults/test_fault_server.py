"""The LangGraph server under abuse: ``langgraph dev`` serving our ``langgraph.json`` on 127.0.0.1,
driven by ``langgraph_sdk`` and raw HTTP. An oversized question, malformed inputs, a run cancelled
mid-way, a client that disconnects mid-stream and several threads at once: the server stays up,
its memory stays bounded, and a normal question afterwards is answered."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import MINI_CORPUS
from langgraph_server import group_memory_kb, langgraph_dev

langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="pip install -e '.[dev]' brings langgraph-cli[inmem]")
httpx = pytest.importorskip("httpx")

JOBS = 4  # runs the server executes at once (langgraph dev's own default is 1)
# Memory the abuse may add to the warm server, resident: generous for allocator noise, far below
# what one unbounded prefill takes (a 300,000-character question grew the server to 24 GB).
GROWTH_BOUND_MB = 300
ENDED = {"answered", "step_limit", "parse_error", "tool_error", "time_limit", "context_limit"}


async def _error_of(call) -> str:
    """What a run that should fail says (its exception's text), or '' when it did not fail."""
    try:
        await call
    except Exception as e:
        return str(e)
    return ""


def test_the_server_survives_abuse_and_still_answers(tiny_llama, tmp_path, ledger):
    env = {
        "ARAFT_MODEL": str(tiny_llama),
        "ARAFT_CORPUS": str(MINI_CORPUS),
        "ARAFT_MAX_STEPS": "4",
        "ARAFT_MAX_NEW_TOKENS": "200",
    }  # a random model writes all 200: runs last long enough to cancel
    with langgraph_dev(env, tmp_path / "server.log", "--n-jobs-per-worker", str(JOBS)) as server:

        async def abuse():
            client = langgraph_sdk.get_client(url=server.url)
            question = {"question": "Who founded Philadelphia?"}
            warm = await client.runs.wait(None, "araft", input=question)  # loads the model
            memory_before, _ = group_memory_kb(server.process.pid)
            seen: dict = {"warm": warm}

            start = time.monotonic()
            seen["oversized"] = await _error_of(client.runs.wait(None, "araft", input={"question": "why? " * 60_000}))
            seen["oversized_s"] = time.monotonic() - start

            seen["malformed"] = [
                await _error_of(client.runs.wait(None, "araft", input=bad))
                for bad in (
                    {},
                    {"question": ""},
                    {"messages": [{"type": "nonsense", "content": "x"}]},
                    {"question": ["a", "b"]},
                    {"unknown": 1},
                )
            ]

            thread = (await client.threads.create())["thread_id"]
            run = await client.runs.create(thread, "araft", input=question)
            for _ in range(100):  # cancel it while it runs
                seen["before_cancel"] = (await client.runs.get(thread, run["run_id"]))["status"]
                if seen["before_cancel"] == "running":
                    break
                await asyncio.sleep(0.05)
            await client.runs.cancel(thread, run["run_id"], wait=True)
            seen["cancelled"] = (await client.runs.get(thread, run["run_id"]))["status"]
            seen["after_cancel"] = await client.runs.wait(thread, "araft", input={"question": "Is it in Pennsylvania?"})

            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                async with http.stream(
                    "POST",
                    "/runs/stream",
                    json={"assistant_id": "araft", "input": question, "stream_mode": ["updates"]},
                ) as response:
                    async for _ in response.aiter_lines():
                        break  # the client goes away after the first line

            threads = [(await client.threads.create())["thread_id"] for _ in range(2 * JOBS)]
            seen["parallel"] = await asyncio.gather(*(client.runs.wait(t, "araft", input=question) for t in threads))
            seen["final"] = await client.runs.wait(None, "araft", input=question)
            seen["memory_kb"] = (memory_before, *group_memory_kb(server.process.pid))
            return seen

        seen = asyncio.run(abuse())
        alive = server.process.poll() is None

    before, after, peak = seen["memory_kb"]
    ledger.add(
        "langgraph server",
        faults=1 + 5 + 1 + 1 + 1,
        runs=1 + 1 + 5 + 2 + 1 + 2 * JOBS + 1,
        completed=2 + 2 * JOBS + 1,
        crashes=int(not alive),
        seconds=seen["oversized_s"],
    )
    assert alive, (tmp_path / "server.log").read_text()[-3000:]
    assert "the question is 299,999 characters, more than this agent takes (2,000" in seen["oversized"]
    # each refused input names its own problem, not any error at all
    empty = "the question is empty: invoke with {'question': '...'}"
    assert [e.splitlines()[0] for e in seen["malformed"]] == [
        f"ValueError: {empty} or end 'messages' with a HumanMessage that has text",
        f"ValueError: {empty} or end 'messages' with a HumanMessage that has text",
        "ValueError: Unexpected message type: 'nonsense'. Use one of 'human', 'user', 'ai', 'assistant', "
        "'function', 'tool', 'system', or 'developer'.",
        "ValueError: the question must be text, not a list: invoke with {'question': '...'}",
        f"ValueError: {empty} or end 'messages' with a HumanMessage that has text",
    ], seen["malformed"]
    # cancelled while it ran: interrupted, not ended as if it had finished
    assert (seen["before_cancel"], seen["cancelled"]) == ("running", "interrupted"), seen
    assert seen["after_cancel"]["status"] in ENDED and seen["after_cancel"]["question"] == "Is it in Pennsylvania?"
    assert all(r["status"] in ENDED and r["steps"] for r in seen["parallel"])
    assert seen["final"]["status"] in ENDED and seen["final"]["steps"]
    assert after - before < GROWTH_BOUND_MB * 1024, (
        f"resident {before // 1024} MB -> {after // 1024} MB (peak {peak // 1024})"
    )
