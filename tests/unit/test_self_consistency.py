"""Self-consistency: K runs fanned out with Send and a vote over their normalised answers; the
vote's rules, what the output and the recorder keep, streaming, threads, the agent as a tool, and
the K runs decoding side by side on a real (tiny) model."""

import asyncio
from typing import Any

import pytest
from helpers import act, answer
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from araft_lc.agent.graph import create_araft_agent
from araft_lc.agent.recorder import TrajectoryRecorder
from araft_lc.agent.vote import vote


@tool
def Wikipedia(query: str) -> str:
    """Looks a page up."""
    return f"{query}: Philadelphia was founded by William Penn in 1682."


class BySeed(BaseChatModel):
    """A model server at the edge: its reply depends on the decoding it is asked for, as a
    sampling server's does. ``replies[run]`` lists run ``run``'s replies step by step, the run
    told by the call's seed (None: greedy, run 0; seed 1000 * k + step: run k)."""

    replies: dict[int, list[str]]
    calls: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "by-seed"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.calls.append(kwargs)
        seed = kwargs.get("seed")
        run, step = (0, None) if seed is None else divmod(seed, 1000)
        script = self.replies[run]
        text = script[min(len([c for c in self.calls if self._run(c) == run]) - 1, len(script) - 1)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    @staticmethod
    def _run(call: dict[str, Any]) -> int:
        return 0 if call.get("seed") is None else call["seed"] // 1000


def voting(replies: dict[int, list[str]], **kwargs: Any):
    model = BySeed(replies=replies, calls=[])
    return model, create_araft_agent(model, [Wikipedia], prompt="zeroshot", samples=len(replies), **kwargs)


def runs_of(*answers: Any, observations: Any = None) -> list[dict[str, Any]]:
    observations = observations or [""] * len(answers)
    return [{"answer": a, "steps": [{"observation": o}]} for a, o in zip(answers, observations, strict=True)]


# -- the vote --------------------------------------------------------------------------------


def test_the_majority_wins_over_normalised_answers():
    assert vote(runs_of("Penn", "William Penn", "the William Penn.")) == {
        "rule": "majority",
        "counts": {"penn": 1, "william penn": 2},
        "chosen": "william penn",
        "run": 1,
    }
    assert vote(runs_of("no", "Yes", "yes"))["chosen"] == "yes"


def test_a_tie_goes_to_the_earliest_run_and_no_answer_does_not_vote():
    assert vote(runs_of("Penn", "Fox", "Fox", "Penn"))["run"] == 0  # the greedy run's answer
    assert vote(runs_of(None, "Fox", "Penn", "Penn", "Fox"))["run"] == 1  # else the earliest of the tied
    assert vote(runs_of(None, "", "Fox"))["counts"] == {"fox": 1}
    assert vote(runs_of(None, None)) == {"rule": "majority", "counts": {}, "chosen": None, "run": 0}


def test_grounded_counts_answers_found_in_their_own_run():
    runs = runs_of("Fox", "Fox", "William Penn", observations=["nothing", "a fox-free page", "by William Penn in"])
    assert vote(runs)["chosen"] == "fox"
    grounded = vote(runs, "grounded")
    assert grounded["chosen"] == "william penn" and grounded["counts"] == {"william penn": 1}
    assert vote(runs_of("yes", "Fox", observations=["x", "y"]), "grounded")["chosen"] == "yes"  # yes/no count
    assert vote(runs_of("Fox", "Penn", observations=["x", "y"]), "grounded")["run"] == 0  # none found: all count
    with pytest.raises(ValueError, match="unknown vote rule 'best'"):
        vote(runs_of("Fox"), "best")


# -- the graph -------------------------------------------------------------------------------


def test_k_runs_fan_out_and_the_vote_answers():
    model, agent = voting(
        {
            0: [act("Wikipedia", "Philadelphia"), answer("Penn")],
            1: [answer("William Penn")],
            2: [act("Wikipedia", "Penn"), answer("the William Penn")],
        },
        vote="majority",
    )
    out = agent.invoke({"question": "Who founded Philadelphia?"})
    assert out["answer"] == "William Penn" and out["status"] == "answered"
    assert out["vote"] == {
        "rule": "majority",
        "counts": {"penn": 1, "william penn": 2},
        "chosen": "william penn",
        "run": 1,
    }
    assert out["steps"] == out["runs"][1]["steps"] and out["messages"][-1].content == "William Penn"
    assert [(r["run"], r["temperature"], r["seed"], len(r["steps"])) for r in out["runs"]] == [
        (0, 0.0, None, 2),
        (1, 0.7, 1000, 1),
        (2, 0.7, 2000, 2),
    ]
    # run 0 greedy; the sampled runs at the temperature, each step its own seed
    asked = sorted((c.get("temperature"), c.get("seed")) for c in model.calls)
    assert asked == [(0.0, None), (0.0, None), (0.7, 1000), (0.7, 2000), (0.7, 2001)]


def test_runs_without_an_answer_do_not_vote_and_none_leaves_the_greedy_outcome():
    _, agent = voting({0: [act("Wikipedia", "x")], 1: [answer("Fox")], 2: ["no action at all"]}, max_steps=2)
    out = agent.invoke({"question": "Who?"})
    assert out["answer"] == "Fox" and out["vote"]["counts"] == {"fox": 1}
    assert [r["status"] for r in out["runs"]] == ["step_limit", "answered", "parse_error"]
    _, agent = voting({0: [act("Wikipedia", "x")], 1: ["no action at all"]}, max_steps=2)
    out = agent.invoke({"question": "Who?"})
    assert out["answer"] is None and out["status"] == "step_limit" and out["vote"]["chosen"] is None
    assert out["messages"][-1].content.startswith("No answer: the run ended with status step_limit")


def test_the_recorder_keeps_the_vote_and_every_run():
    _, agent = voting({0: [answer("Penn")], 1: [answer("Fox")], 2: [answer("penn")]})
    recorder = TrajectoryRecorder(score=lambda p, g: {"em": float((p or "").lower() == g.lower())})
    agent.invoke(
        {"question": "Who founded Philadelphia?"},
        {"callbacks": [recorder], "metadata": {"question_id": "q1", "gold_answer": "Penn"}},
    )
    [record] = recorder.records
    assert record.prediction == "Penn" and record.vote["counts"] == {"penn": 2, "fox": 1}
    assert [(r["run"], r["answer"], r["scores"]) for r in record.runs] == [
        (0, "Penn", {"em": 1.0}),
        (1, "Fox", {"em": 0.0}),
        (2, "penn", {"em": 1.0}),
    ]
    assert len(record.calls) == 3  # every run's model call, for the cost
    assert type(record).from_dict(record.to_dict()) == record


def test_streaming_shows_each_run_then_the_vote():
    _, agent = voting({0: [answer("Penn")], 1: [answer("Fox")], 2: [answer("Penn")]})
    updates = list(agent.stream({"question": "Who?"}, stream_mode="updates"))
    nodes = [next(iter(u)) for u in updates]
    assert nodes == ["start", "run", "run", "run", "vote"]
    assert updates[-1]["vote"]["answer"] == "Penn"

    async def last() -> Any:
        return [u async for u in agent.astream({"question": "Who?"}, stream_mode="updates")][-1]

    assert asyncio.run(last())["vote"]["vote"]["chosen"] == "penn"


def test_a_thread_votes_each_question_afresh_and_the_tool_answers():
    _, agent = voting({0: [answer("Penn")], 1: [answer("Fox")], 2: [answer("Penn")]}, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    agent.invoke({"question": "Who founded Philadelphia?"}, config)
    second = agent.invoke({"question": "Who founded it, again?"}, config)
    assert len(second["runs"]) == 3 and second["question"] == "Who founded it, again?"
    assert [m.type for m in second["messages"]] == ["human", "ai", "human", "ai"]
    _, agent = voting({0: [answer("Penn")], 1: [answer("Fox")], 2: [answer("Penn")]})
    assert agent.as_tool().invoke({"question": "Who?"}) == "Penn"


def test_bad_settings_fail_at_construction():
    model = BySeed(replies={0: [answer("x")]}, calls=[])
    with pytest.raises(ValueError, match="samples must be 1 or more"):
        create_araft_agent(model, [Wikipedia], samples=0)
    with pytest.raises(ValueError, match="temperature above 0"):
        create_araft_agent(model, [Wikipedia], samples=3, sample_temperature=0.0)
    with pytest.raises(ValueError, match="unknown vote rule"):
        create_araft_agent(model, [Wikipedia], samples=3, vote="best")


# -- on a real model -------------------------------------------------------------------------


def test_the_runs_decode_side_by_side_and_the_greedy_run_is_the_agent_alone(tiny_llama, wiki):
    from araft_lc.chat.chat_model import AraftChatModel

    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=12)
    alone = create_araft_agent(model, [wiki], prompt="zeroshot_turns", max_steps=2)
    agent = create_araft_agent(model, [wiki], prompt="zeroshot_turns", max_steps=2, samples=4, sample_temperature=1.0)
    greedy = alone.invoke({"question": "Who founded Philadelphia?"})
    before = model.engine.batcher.batches.copy()
    first = agent.invoke({"question": "Who founded Philadelphia?"})
    assert max(model.engine.batcher.batches - before) >= 2  # runs decoded in one batch
    assert first["runs"][0]["steps"] == greedy["steps"]
    assert len({str(r["steps"]) for r in first["runs"]}) > 1  # the sampled runs differ from it
    assert agent.invoke({"question": "Who founded Philadelphia?"})["runs"] == first["runs"]  # seeded
