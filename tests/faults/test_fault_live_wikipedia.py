"""The live Wikipedia backend against a misbehaving MediaWiki server: every fault becomes an
observation or a bounded retry, within a hard time limit per call, and never an exception in
the graph."""

from __future__ import annotations

import time

import pytest

from araft_lc.agent.graph import create_araft_agent
from araft_lc.wiki import LiveWikipedia, WikipediaTool
from faults.fault_servers import PAGE, WIKI_FAULTS, serve, wiki_server

CALL_TIMEOUT = 2.0  # seconds per API call, all tries together
SLACK = 3.0  # a busy 2-core machine; the faults would hold a call for 30 s or forever


def search(query: str) -> str:
    return f"Thought: I look it up.\nAction: [action: Wikipedia, action_input: {query}]"


def answer(text: str) -> str:
    return f"Thought: done.\nAction: [action: Answer, action_input: {text}]"


@pytest.fixture(scope="module")
def server():
    with serve(wiki_server()) as s:
        yield s


def tool_for(server) -> WikipediaTool:
    backend = LiveWikipedia(
        f"{server.url}/w/api.php",
        timeout=0.5,
        retries=2,
        backoff=0.05,
        max_wait=1.5,
        call_timeout=CALL_TIMEOUT,
        max_bytes=1 << 20,
    )
    return WikipediaTool(backend=backend)


@pytest.mark.parametrize("fault", WIKI_FAULTS)
def test_every_fault_is_an_observation_within_the_call_limit(server, fault, scripted, ledger):
    server.fault, server.fail_first, server.requests = fault, 0, 0
    agent = create_araft_agent(
        scripted(script=[search("Philadelphia"), answer("Penn")]), [tool_for(server)], max_steps=3
    )
    start = time.monotonic()
    state = agent.invoke({"question": "Who founded Philadelphia?"})
    seconds = time.monotonic() - start
    # The run went on past the failed lookup and answered; the failure is the observation.
    assert state["status"] == "answered" and state["answer"] == "Penn"
    observation = state["steps"][0]["observation"]
    assert observation.startswith("Wikipedia lookup failed (WikipediaUnavailable"), observation
    # One lookup is at most two API calls (page, then search), each bounded by CALL_TIMEOUT.
    assert seconds < 2 * CALL_TIMEOUT + SLACK, f"{fault}: {seconds:.2f} s"
    ledger.add("live wikipedia", faults=1, runs=1, completed=1, seconds=seconds)  # the whole run: an upper bound


@pytest.mark.parametrize(
    "fault", ["429", "429-date", "500", "503", "malformed", "empty", "truncated", "reset", "close", "binary"]
)
def test_a_passing_fault_is_retried_and_the_page_is_found(server, fault, ledger):
    server.fault, server.fail_first, server.requests = fault, 1, 0
    start = time.monotonic()
    observation = tool_for(server).invoke("Philadelphia")
    seconds = time.monotonic() - start
    assert observation == PAGE["extract"]
    assert server.requests == 2  # one fault, one retry
    assert seconds < CALL_TIMEOUT + SLACK
    ledger.add("live wikipedia", faults=1, runs=1, completed=1, seconds=seconds)


def test_retry_after_longer_than_the_call_limit_gives_up_at_once(server):
    server.fault, server.fail_first, server.requests = "429-hour", 0, 0
    start = time.monotonic()
    observation = tool_for(server).invoke("Philadelphia")
    assert "failed after 1 tries" in observation
    assert time.monotonic() - start < SLACK  # not the hour it asked for, nor a retry after 1.5 s


def test_fault_free_server_serves_the_page(server):
    server.fault, server.fail_first = "", 0
    assert tool_for(server).invoke("philadelphia") == PAGE["extract"]
    assert tool_for(server).invoke("Phila") == PAGE["extract"]  # via search
