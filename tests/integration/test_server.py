"""The LangGraph server (``langgraph dev``, in-memory runtime) running our ``langgraph.json``,
driven by its own client, ``langgraph_sdk``: threads, runs, streaming, a second turn, history
(the server itself: ``langgraph_server.langgraph_dev``)."""

import asyncio

import pytest
from helpers import MINI_CORPUS
from langgraph_server import langgraph_dev

langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="pip install -e '.[dev]' brings langgraph-cli[inmem]")


@pytest.fixture
def server(tiny_llama, tmp_path):
    env = {
        "ARAFT_MODEL": str(tiny_llama),
        "ARAFT_CORPUS": str(MINI_CORPUS),
        "ARAFT_MAX_STEPS": "2",
        "ARAFT_MAX_NEW_TOKENS": "8",
    }
    with langgraph_dev(env, tmp_path / "server.log") as server:
        yield server.url, tmp_path / "server.log"


def test_threads_runs_stream_and_history_on_langgraph_dev(server):
    url, log = server

    async def drive():
        client = langgraph_sdk.get_client(url=url)
        thread = (await client.threads.create())["thread_id"]
        first = await client.runs.wait(thread, "araft", input={"question": "Who founded Philadelphia?"})
        updates = []
        async for part in client.runs.stream(
            thread,
            "araft",
            input={"messages": [{"type": "human", "content": "When was it founded?"}]},
            stream_mode="updates",
        ):
            if part.event == "updates":
                updates.append(part.data)
        third = await client.runs.wait(thread, "araft", input={"question": "Is it in Pennsylvania?"})
        state = await client.threads.get_state(thread)
        history = await client.threads.get_history(thread, limit=100)
        return first, updates, third, state, history

    first, updates, third, state, history = asyncio.run(drive())
    assert first["question"] == "Who founded Philadelphia?"
    assert first["status"] in ("parse_error", "step_limit", "tool_error", "answered")
    assert 1 <= len(first["steps"]) <= 2 and {"thought", "action", "raw"} <= set(first["steps"][0])
    # The second turn asked its own question, streamed node by node, its steps as JSON.
    assert [next(iter(u)) for u in updates][0] == "start"
    assert updates[0]["start"]["question"] == "When was it founded?"
    assert all(isinstance(s, dict) for u in updates for v in u.values() for s in (v or {}).get("steps", []))
    assert third["question"] == "Is it in Pennsylvania?"
    humans = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
    assert humans == ["Who founded Philadelphia?", "When was it founded?", "Is it in Pennsylvania?"]
    assert len(state["values"]["messages"]) == 6
    assert len(history) >= 9  # checkpoints of three runs
    text = log.read_text()
    assert "BlockingError" not in text and "Blocking call" not in text, text[-3000:]
