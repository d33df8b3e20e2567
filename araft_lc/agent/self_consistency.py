r"""Self-consistency: K runs of the ReAct graph on one question, fanned out with LangGraph's
``Send``, and their answers put to a vote.

::

    start --Send x K--> run (run 0 greedy, runs 1..K-1 sampled) --> vote --> END

The ReAct paper's best HotpotQA results combined ReAct with self-consistency (majority over
sampled runs); here it is a graph around the single-run one (``create_araft_agent(...,
samples=K)``). Run 0 decodes greedily, exactly as the agent does alone; the others sample at
``temperature``, each step seeded (``seed + 1000 * run + step``), so a question's runs are
reproducible. On a local ``AraftChatModel`` the K runs are concurrent calls: the continuous batch
decodes them side by side and the prefix cache reads their shared prompt once.

The vote is ``araft_lc.agent.vote``'s (majority over HotpotQA-normalised answers, or ``grounded``;
ties to the earliest run, the greedy one first). The output carries the vote (its counts and the
winning run) and every run's steps; the answer's steps are those of the winning run.
"""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Optional, Sequence

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from araft_lc.agent.schema import AgentInput, AgentOutput, AraftAgent, as_agent, new_question
from araft_lc.agent.vote import VOTE_RULES, Vote, VoteRule, vote
from araft_lc.react.chat_format import message_text
from araft_lc.react.trajectory import Status, StepDict

__all__ = ["SAMPLE_KEY", "VOTE_RULES", "RunResult", "Vote", "VoteRule", "VotedOutput", "self_consistent", "vote"]

SAMPLE_KEY = "araft_sample"  # configurable: {"temperature": float, "seed": int} of the run a node is in


class RunResult(TypedDict):
    """One of the K runs: which, how it decoded, and what came of it."""

    run: int
    temperature: float
    seed: Optional[int]
    answer: Optional[str]
    status: Status
    steps: list[StepDict]
    reply: str  # the run's last message: the answer, or why it ended without one


class VotedOutput(AgentOutput, total=False):
    """``AgentOutput`` (the answer, status and steps of the winning run), the vote, every run."""

    vote: Vote
    runs: list[RunResult]


def _gather(old: Optional[list[RunResult]], new: Optional[list[RunResult]]) -> list[RunResult]:
    """The runs' results as they come in; None (a new question on a thread) starts afresh."""
    return [] if new is None else [*(old or []), *new]


class _VotedState(VotedOutput, total=False):
    asked: str
    gathered: Annotated[list[RunResult], _gather]


class _Sampling(TypedDict):
    """How run ``k`` decodes (``SAMPLE_KEY``'s value)."""

    temperature: float
    seed: Optional[int]


class _Task(TypedDict):
    """What ``Send`` gives a run: the question and which run it is."""

    asked: str
    run: int


def self_consistent(
    run_once: AraftAgent,
    *,
    samples: int,
    temperature: float,
    seed: int,
    rule: VoteRule,
    max_question_chars: Optional[int],
    checkpointer: Any = None,
    name: str = "araft",
    prompt_version: str = "",
    tools: Sequence[dict[str, Any]] = (),
) -> AraftAgent:
    """The self-consistency graph over ``run_once`` (the single-run agent, compiled without a
    checkpointer: it runs as a subgraph of this one).

    Raises:
        ValueError: fewer than 2 samples, a temperature not above 0, or an unknown rule.
    """
    if samples < 2:
        raise ValueError(f"self-consistency takes 2 or more samples, not {samples}: 1 is the single-run agent")
    if not temperature > 0:
        raise ValueError(f"the sampled runs need a temperature above 0, not {temperature}")
    if rule not in VOTE_RULES:
        raise ValueError(f"unknown vote rule {rule!r}: use one of {', '.join(VOTE_RULES)}")

    def start(state: _VotedState) -> dict[str, Any]:
        return {
            **new_question(state, max_question_chars),
            "gathered": None,
            "answer": None,
            "status": "running",
            "steps": [],
        }

    def fan_out(state: _VotedState) -> list[Send]:
        return [Send("run", _Task(asked=state["asked"], run=k)) for k in range(samples)]

    def settings(k: int) -> _Sampling:
        if k == 0:
            return _Sampling(temperature=0.0, seed=None)
        return _Sampling(temperature=temperature, seed=seed + 1000 * k)

    def config_of(config: RunnableConfig, k: int) -> RunnableConfig:
        configurable = {**(config.get("configurable") or {}), SAMPLE_KEY: settings(k)}
        return {**config, "configurable": configurable, "run_name": f"{name}-run-{k}"}

    def result(k: int, out: Mapping[str, Any]) -> dict[str, Any]:
        messages = out.get("messages") or []
        return {
            "gathered": [
                RunResult(
                    run=k,
                    **settings(k),
                    answer=out.get("answer"),
                    status=out["status"],
                    steps=out.get("steps") or [],
                    reply=message_text(messages[-1]) if messages else "",
                )
            ]
        }

    def run(task: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:  # a _Task
        return result(task["run"], run_once.invoke({"question": task["asked"]}, config_of(config, task["run"])))

    async def arun(task: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        out = await run_once.ainvoke({"question": task["asked"]}, config_of(config, task["run"]))
        return result(task["run"], out)

    def count(state: _VotedState) -> dict[str, Any]:
        runs = sorted(state.get("gathered") or [], key=lambda r: r["run"])
        ballot = vote(runs, rule)
        chosen = runs[ballot["run"]]
        return {
            "answer": chosen["answer"],
            "status": chosen["status"],
            "steps": chosen["steps"],
            "question": state["asked"],
            "messages": [AIMessage(chosen["reply"])],
            "vote": ballot,
            "runs": runs,
        }

    graph = StateGraph(_VotedState, input_schema=AgentInput, output_schema=VotedOutput)
    graph.add_node("start", start)
    # typed by what Send gives it; the functions keep a Mapping annotation, which RunnableLambda reads at
    # run time as its input schema (a TypedDict there would be a schema it cannot build)
    run_node: RunnableLambda[_Task, dict[str, Any]] = RunnableLambda(run, afunc=arun, name="run")
    graph.add_node("run", run_node)
    graph.add_node("vote", count)
    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", fan_out, ["run"])
    graph.add_edge("run", "vote")
    graph.add_edge("vote", END)
    return as_agent(graph.compile(checkpointer=checkpointer, name=name), prompt_version, tools)
