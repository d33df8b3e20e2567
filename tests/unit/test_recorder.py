"""TrajectoryRecorder wherever the Araft graph runs: alone, as a subgraph node, as a chain step,
in batch, streamed; and a warning when it finds no Araft run."""

import asyncio
import warnings

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph

from araft_lc.agent.graph import create_araft_agent
from araft_lc.agent.recorder import TrajectoryRecorder
from araft_lc.chat.chat_model import AraftChatModel
from evals.metrics import score

SEARCH = "Thought: look it up\nAction: [action: Wikipedia, action_input: Philadelphia]"
ANSWER = "Thought: I know it\nAction: [action: Answer, action_input: William Penn]"


def check(record, question="Who founded Philadelphia?"):
    assert record.question == question and record.prediction == "William Penn" and record.status == "answered"
    assert [s.action for s in record.steps] == ["Wikipedia", "Answer"]
    assert len(record.calls) == 2 and record.calls[1]["output"] == ANSWER
    assert record.scores == {"em": 1.0, "f1": 1.0}


def test_agent_as_a_subgraph_node(scripted, wiki):
    agent = create_araft_agent(scripted(script=[SEARCH, ANSWER]), [wiki])
    parent = StateGraph(MessagesState)
    parent.add_node("research", agent)
    parent.add_node("after", lambda state: {"messages": [HumanMessage("thanks")]})
    parent.add_edge(START, "research")
    parent.add_edge("research", "after")
    parent.add_edge("after", END)
    recorder = TrajectoryRecorder(score=score)
    config = {"callbacks": [recorder], "metadata": {"question_id": "q1", "gold_answer": "William Penn"}}
    result = parent.compile().invoke({"messages": [HumanMessage("Who founded Philadelphia?")]}, config)
    assert result["messages"][-1].content == "thanks"
    [record] = recorder.records
    check(record)
    assert record.question_id == "q1"


def test_agent_as_a_chain_step_and_in_batch(scripted, wiki):
    agent = create_araft_agent(scripted(script=[SEARCH, ANSWER]), [wiki])
    chain = RunnableLambda(lambda q: {"question": q}) | agent | RunnableLambda(lambda out: out["answer"])
    recorder = TrajectoryRecorder(score=score)
    gold = {"metadata": {"gold_answer": "William Penn"}}
    assert chain.invoke("Who founded Philadelphia?", {"callbacks": [recorder], **gold}) == "William Penn"
    check(recorder.records[0])

    batched = TrajectoryRecorder()
    chain.batch(
        ["Who founded Philadelphia?", "Who founded it?"], [{"callbacks": [batched], "max_concurrency": 2, **gold}] * 2
    )
    assert sorted(r.question for r in batched.records) == ["Who founded Philadelphia?", "Who founded it?"]
    assert all(r.scores == {} for r in batched.records)  # no score function, no scores


def test_usage_is_kept_when_streaming(tiny_llama, wiki):
    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=6, streaming=True)
    recorder = TrajectoryRecorder()
    agent = create_araft_agent(model, [wiki], max_steps=2)
    asyncio.run(agent.ainvoke({"question": "Who founded Philadelphia?"}, {"callbacks": [recorder]}))
    [record] = recorder.records
    assert len(record.calls) == 2
    for call in record.calls:
        assert call["usage"]["output_tokens"] >= 1 and call["usage"]["input_tokens"] > 10


def test_warns_once_when_no_agent_runs(scripted):
    recorder = TrajectoryRecorder()
    chain = RunnableLambda(lambda x: x + 1)
    with pytest.warns(RuntimeWarning, match="no Araft agent run"):
        chain.invoke(1, {"callbacks": [recorder]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chain.invoke(2, {"callbacks": [recorder]})  # once is enough
    assert recorder.records == []
