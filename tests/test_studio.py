"""The LangGraph server (``langgraph dev``, in-memory runtime) running our ``langgraph.json``,
driven by its own client, ``langgraph_sdk``: threads, runs, streaming, a second turn, history.

The server runs without ``--allow-blocking``: any blocking call on its event loop fails the run.
It is started on 127.0.0.1 from the repository root (``langgraph.json`` paths are relative to the
working directory; its in-memory store goes to the ignored ``.langgraph_api/``), in its own
process group, and stopped by its PID.
"""

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.common import stop_process_group
from conftest import MINI_CORPUS, ROOT

langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="pip install -e '.[dev]' brings langgraph-cli[inmem]")

STARTUP_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_llama, tmp_path):
    port = free_port()
    env = {**os.environ, "ARAFT_MODEL": str(tiny_llama), "ARAFT_CORPUS": str(MINI_CORPUS),
           "ARAFT_MAX_STEPS": "2", "ARAFT_MAX_NEW_TOKENS": "8", "LANGSMITH_TRACING": "false",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    cli = Path(sys.executable).with_name("langgraph")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [str(cli), "dev", "--config", str(ROOT / "langgraph.json"), "--host", "127.0.0.1", "--port", str(port),
         "--no-browser", "--no-reload"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                urllib.request.urlopen(url + "/ok", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"langgraph dev did not start:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, tmp_path / "server.log"
    finally:
        stop_process_group(proc, timeout=20)
        log.close()


def test_threads_runs_stream_and_history_on_langgraph_dev(server):
    url, log = server

    async def drive():
        client = langgraph_sdk.get_client(url=url)
        thread = (await client.threads.create())["thread_id"]
        first = await client.runs.wait(thread, "araft", input={"question": "Who founded Philadelphia?"})
        updates = []
        async for part in client.runs.stream(
                thread, "araft", input={"messages": [{"type": "human", "content": "When was it founded?"}]},
                stream_mode="updates"):
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
