"""evals.run_pool and the callback handlers: a failed write inside or after a run is an error
that stops everything, never a logged warning, a retry or an "error" record."""

import asyncio
import errno

import pytest
from helpers import MINI_CORPUS

from araft_lc.agent.graph import create_araft_agent
from araft_lc.agent.recorder import TrajectoryRecorder
from araft_lc.agent.tracing import JsonlTraceHandler
from araft_lc.storage.jsonl_sink import JsonlSink
from araft_lc.storage.write_error import WriteError
from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool
from evals.hotpotqa import Question
from evals.run_pool import run_pool

ANSWER = "Thought: I know it.\nAction: [action: Answer, action_input: Arthur's Magazine]"
QUESTIONS = [
    Question(id=f"q{i}", question=f"Which magazine was started first? ({i})", answer="Arthur's Magazine")
    for i in range(12)
]


@pytest.fixture
def agent_and_model(scripted, mini_index):
    model = scripted(script=[ANSWER])
    return create_araft_agent(model, [WikipediaTool(backend=LocalWikipedia(mini_index))]), model


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_failed_record_write_stops_the_pool(agent_and_model, concurrency):
    agent, model = agent_and_model
    written = []
    sink = JsonlSink("/dev/full")  # every write: ENOSPC

    def on_record(record):
        written.append(record)
        sink.write(record)

    with pytest.raises(WriteError, match="cannot write /dev/full: No space left on device"):
        run_pool(agent, QUESTIONS, on_record, concurrency=concurrency, retries=2)
    # only the runs already in flight tried to write; none was retried or written as an error
    assert 1 <= len(written) <= concurrency < len(QUESTIONS)
    assert all(r.status == "answered" for r in written)
    assert len(model.prompts) == len(written)


def test_a_write_failing_inside_a_callback_is_not_retried_as_a_model_error(agent_and_model):
    agent, model = agent_and_model
    inner = TrajectoryRecorder(on_record=JsonlSink("/dev/full").write)  # a user's own recorder
    written = []
    with pytest.raises(WriteError):
        run_pool(agent.with_config(callbacks=[inner]), QUESTIONS[:3], written.append, retries=2)
    assert written == [] and len(model.prompts) == 1  # one try, no "error" record, no next question


@pytest.mark.parametrize("handler", ["recorder", "trace"])
@pytest.mark.parametrize("call", ["invoke", "ainvoke"])
def test_our_handlers_raise_a_failed_write_out_of_the_run(agent_and_model, handler, call):
    agent, _ = agent_and_model
    callback = (
        TrajectoryRecorder(on_record=JsonlSink("/dev/full").write)
        if handler == "recorder"
        else JsonlTraceHandler("/dev/full")
    )
    config = {"callbacks": [callback]}
    with pytest.raises(OSError) as failure:
        if call == "invoke":
            agent.invoke({"question": QUESTIONS[0].question}, config)
        else:
            asyncio.run(agent.ainvoke({"question": QUESTIONS[0].question}, config))
    assert failure.value.errno == errno.ENOSPC


def test_ask_with_a_trace_on_a_full_disk_is_one_line(tiny_llama, capsys):
    from araft import main

    code = main(
        [
            "ask",
            "Which magazine was started first?",
            "--model",
            str(tiny_llama),
            "--corpus",
            str(MINI_CORPUS),
            "--max-steps",
            "1",
            "--max-new-tokens",
            "4",
            "--trace",
            "/dev/full",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("araft: error: cannot write /dev/full: No space left on device")
    assert "Traceback" not in err and "Answer:" not in out
