"""Bounded resources: tokens per step, steps and seconds per run, observation and query length.
A model that never emits a stop sequence, a page of 50,000 characters or a slow model cannot
make a run unbounded."""

from __future__ import annotations

import json
import time

from araft_lc.agent.graph import create_araft_agent
from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.wiki import LocalWikipedia, WikipediaTool
from araft_lc.wiki.index import build_index
from araft_lc.wiki.wikipedia import LookupResult


def test_a_model_that_never_stops_is_cut_per_step_and_per_run(tiny_llama, mini_index, ledger):
    # A random tiny Llama never writes "Observation:" nor an end token worth stopping at.
    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=12, max_batch_size=1)
    calls = []

    def count(reply):
        calls.append(reply.usage_metadata["output_tokens"])
        return reply

    agent = create_araft_agent(model | count, [WikipediaTool(backend=LocalWikipedia(mini_index))], max_steps=3)
    state = agent.invoke({"question": "Who founded Philadelphia?"})
    assert state["status"] != "running" and 1 <= len(state["steps"]) <= 3
    assert calls and max(calls) <= 12
    ledger.add("limits", faults=1, runs=1, completed=1)


def test_max_seconds_ends_a_slow_run_with_time_limit(mini_index, ledger):
    from helpers import ScriptedChatModel

    class Slow(ScriptedChatModel):
        """A model server that takes 0.4 s a call and always searches."""

        def _generate(self, *args, **kwargs):
            time.sleep(0.4)
            return super()._generate(*args, **kwargs)

    model = Slow(script=["Thought: look.\nAction: [action: Wikipedia, action_input: Philadelphia]"])
    agent = create_araft_agent(
        model, [WikipediaTool(backend=LocalWikipedia(mini_index))], max_steps=50, max_seconds=1.0
    )
    state = agent.invoke({"question": "Who founded Philadelphia?"})
    assert state["status"] == "time_limit"
    assert 2 <= len(state["steps"]) < 50  # it ran, then was stopped long before the step cap
    assert "longer than 1.0 s" in state["messages"][-1].content
    ledger.add("limits", faults=1, runs=1, completed=1)


def test_max_seconds_stops_generation_inside_a_step(tiny_llama, mini_index, ledger, tmp_path):
    from helpers import with_context

    from araft_lc.agent.recorder import TrajectoryRecorder
    from araft_lc.chat.chat_model import AraftChatModel

    # A random model that never writes a stop string, allowed 100,000 tokens a step (in a context
    # that takes them): without a deadline inside generation its first step would run for minutes.
    long_context = with_context(tiny_llama, tmp_path / "tiny-200k", 200_000)
    model = AraftChatModel(model_id=str(long_context), max_new_tokens=100_000, prefix_cache=False)
    agent = create_araft_agent(model, [WikipediaTool(backend=LocalWikipedia(mini_index))], max_steps=5, max_seconds=1.0)
    recorder = TrajectoryRecorder()
    state = agent.invoke({"question": "Who founded Philadelphia?"}, {"callbacks": [recorder]})
    assert state["status"] == "time_limit" and len(state["steps"]) == 1
    assert recorder.records[0].calls[0]["usage"]["output_tokens"] < 100_000  # cut at the deadline
    ledger.add("limits", faults=1, runs=1, completed=1)


def test_observation_and_query_lengths_are_capped(tmp_path, ledger):
    source = tmp_path / "big.jsonl"
    sentence = "Philadelphia is a city in Pennsylvania with a long history. "
    source.write_text(json.dumps({"title": "Philadelphia", "text": sentence * 900}) + "\n")  # ~54k chars
    index = tmp_path / "big.sqlite"
    build_index([source], index)
    tool = WikipediaTool(backend=LocalWikipedia(index), max_chars=600)
    observation = tool.invoke("Philadelphia")
    assert 0 < len(observation) <= 600 and observation.endswith(".")

    seen = []

    class Recording:
        name = "recording"

        def lookup(self, query):
            seen.append(query)
            return LookupResult(query)

    WikipediaTool(backend=Recording()).invoke("Philadelphia " * 2000)
    assert len(seen[0]) <= 300
    ledger.add("limits", faults=2, runs=2, completed=2)
