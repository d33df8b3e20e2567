r"""The Araft agent: the ReAct loop (Thought, Action, Observation) as a LangGraph state machine.

::

    start -> reason --answer / step cap--> END
               |  ^ \--parse error--> reason
          action  |
               v  |
               act --step cap--> END

``reason`` renders the prompt, calls the chat model with the stop sequences and parses its
output; ``act`` runs the named tool and records the observation. Every model call is one step,
and the run ends after ``max_steps`` of them whatever they were (our own cap: LangGraph's
recursion limit is ~10k supersteps and would not stop a loop; a lower ``recursion_limit`` set by
the caller ends the run with status ``recursion_limit`` instead of an exception).

Conversations: on a thread (a checkpointer and a ``thread_id``), each new human message (or
``question``) starts a new question with an empty scratchpad; earlier turns stay in ``messages``
and are not shown to the model (each question is answered on its own, as the adapters were
trained). Both nodes have async forms, so ``ainvoke``/``astream`` (and the LangGraph server)
run the model and async-only tools off the event loop.

What a run takes and returns is in ``araft_lc.agent.schema``; with ``samples`` above 1 the agent is
the self-consistency graph around this one (``araft_lc.agent.self_consistency``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, NamedTuple, Optional, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.managed import RemainingSteps
from pydantic import ValidationError

from araft_lc.agent.schema import (
    AGENT_TAG,
    PROMPT_KEY,
    AgentInput,
    AgentOutput,
    AraftAgent,
    as_agent,
    new_question,
    tool_reply,
)
from araft_lc.agent.self_consistency import SAMPLE_KEY, VoteRule, self_consistent
from araft_lc.agent.tool_runner import ToolTimeout, arun_tool, cap_observation, render_output, run_tool
from araft_lc.react.bounds import (
    MAX_QUESTION_CHARS,
    MAX_SECONDS,
    MAX_STEPS,
    OBSERVATION_CHARS,
    TOOL_TIMEOUT,
    check_bounds,
)
from araft_lc.react.chat_format import message_text
from araft_lc.react.parser import Action, Answer, format_action, parse
from araft_lc.react.prompt import STOP, PromptStyle, choose_prompt, load_prompt, render_messages
from araft_lc.react.tool_input import ArgsError, check_tool_names, describe_error, no_such_tool, tool_args, tool_call
from araft_lc.react.trajectory import Status, Step, StepDict, StepError, ToolCard, action_key
from araft_lc.runtime.decoding import ContextLimitError, cut_at_stop_strings

__all__ = [
    "AGENT_TAG",
    "PROMPT_KEY",
    "AgentInput",
    "AgentOutput",
    "AgentState",
    "AraftAgent",
    "create_araft_agent",
    "agent_prompt",
    "cut_at_stop",
    "tool_reply",
]


class AgentState(AgentOutput, total=False):
    """The whole state; the fields below ``steps`` are the graph's own."""

    asked: str  # the question of the run under way
    pending: Optional[StepDict]  # a parsed tool call waiting for the act node
    started: float  # time.time() at the start node, for max_seconds
    remaining_steps: RemainingSteps


def cut_at_stop(text: str, stop: Sequence[str] = STOP) -> str:
    """Cut ``text`` at the first stop string, for models that do not honour ``stop`` themselves."""
    return cut_at_stop_strings(text, stop)[0]


def agent_prompt(model: Any, prompt: Optional[str | PromptStyle] = None) -> PromptStyle:
    """The prompt style an agent on ``model`` runs with: ``prompt`` where given (a warning when
    the model's adapter was trained with another), else the model's own (its ``prompt``), else
    ``fewshot``."""
    trained = getattr(model, "trained_prompt", None)
    chosen = choose_prompt(
        prompt,
        trained=trained if isinstance(trained, str) else None,
        carried=getattr(model, "prompt", None),
        owner=f"the model's adapter ({getattr(model, 'display_name', type(model).__name__)})",
    )
    return chosen if isinstance(chosen, PromptStyle) else load_prompt(chosen)


def _end_status(step: Step) -> Status:
    if step.error == "parse_error":
        return "parse_error"
    if step.error in ("tool_error", "unknown_tool", "tool_timeout"):
        return "tool_error"
    return "step_limit"


def _steps(state: AgentState) -> list[Step]:
    return [Step.from_dict(s) for s in state.get("steps") or []]


class _ToolRun(NamedTuple):
    """The act node's plan: a tool call to make, or the observation that stands for it."""

    call: Step
    tool: Optional[BaseTool] = None
    input: Any = None
    observation: Optional[str] = None
    error: Optional[StepError] = None


def create_araft_agent(
    model: BaseChatModel,
    tools: Optional[Sequence[BaseTool]] = None,
    *,
    prompt: Optional[str | PromptStyle] = None,
    max_steps: int = MAX_STEPS,
    repetition_guard: bool = False,
    max_seconds: Optional[float] = MAX_SECONDS,
    tool_timeout: Optional[float] = TOOL_TIMEOUT,
    observation_chars: Optional[int] = OBSERVATION_CHARS,
    max_question_chars: Optional[int] = MAX_QUESTION_CHARS,
    samples: int = 1,
    sample_temperature: float = 0.7,
    sample_seed: int = 0,
    vote: VoteRule = "grounded",
    checkpointer: Any = None,
    name: str = "araft",
) -> AraftAgent:
    """Build the Araft agent graph.

    Args:
        model: any LangChain chat model (``AraftChatModel``, ``ChatOpenAI`` on a vLLM server, a
            fake model in tests). It is called with ``stop=["Observation:"]``.
        tools: LangChain tools, sync or async-only, of one argument (given the action input as
            text) or several (given it as a JSON object); the prompt lists them with their
            inputs and the parser accepts their names. The default is the Wikipedia tool over
            ``$ARAFT_CORPUS`` when set, else live Wikipedia.
        prompt: a prompt style name (``fewshot``, ``zeroshot``, ``zeroshot_turns``), a YAML path
            or a ``PromptStyle``. None (the default): the model's own (``AraftChatModel.prompt``:
            the style its adapter was trained with), else ``fewshot`` for a model that carries
            none. A style other than the one the model's adapter was trained with is a warning.
            Examples that use a tool the agent lacks are left out of the prompt.
        max_steps: model calls per run, parse errors included (the original's cap: 5).
        repetition_guard: answer an action identical to an earlier one with a note instead of
            running it again (off by default, so the unguarded agent's behaviour can be measured).
        max_seconds: wall time per run: no step starts after this many seconds, and the run
            ends with status ``time_limit``; a model that takes a ``deadline`` (AraftChatModel)
            also stops generating then, so a step never runs past it (others are bounded by
            their token limit and request timeout, tools by their own timeout). None: no limit.
        tool_timeout: seconds a tool call may take; the run's remaining time bounds it too. An
            async tool is cancelled then; a sync tool runs in a thread of its own, which is
            abandoned (Python cannot kill it: it finishes or hangs on its own, and its late result
            is dropped). The step's observation says which tool timed out and after how long
            (``error: "tool_timeout"``). None: only the run's deadline bounds it.
        observation_chars: every observation, whatever the tool returns (text, bytes, a dict, a
            list), is cut to this many characters at a word boundary, with a mark saying its
            length; the step keeps that length (``observed_chars``). None: no cap.
        max_question_chars: a longer question is refused (ValueError) before any model call.
            The defaults are ``araft ask``'s (``araft_lc.chat.presets``).
        samples: runs per question. 1 (the default): one greedy run. K > 1: self-consistency
            (``araft_lc.agent.self_consistency``): one greedy run and K-1 runs sampled at
            ``sample_temperature`` (seeded from ``sample_seed``), fanned out with ``Send``, the
            answer chosen by ``vote`` (``grounded``, the default, measured the better: only answers
            found in their run's observations count; or ``majority``); the output adds ``vote``
            and every run's steps (``runs``).
        checkpointer: passed to ``compile`` (threads, interrupts, LangGraph Studio).
        name: the graph's name in traces.

    Returns:
        A compiled graph. ``invoke``/``stream``/``batch``/``ainvoke``/``astream`` take
        ``{"question": str}`` or ``{"messages": [..., HumanMessage(...)]}`` and return
        ``{"messages", "question", "answer", "status", "steps"}`` (``AgentOutput``), the answer
        as the last AI message. On a thread, each new question starts an empty scratchpad.

    Raises:
        ValueError: ``max_steps`` or ``samples`` below 1, ``max_seconds``, ``tool_timeout``,
            ``observation_chars`` or ``max_question_chars`` not positive, two tools with the same
            name, or (with samples) a ``sample_temperature`` not above 0 or an unknown ``vote``.
    """
    check_bounds(
        max_steps=max_steps,
        max_seconds=max_seconds,
        tool_timeout=tool_timeout,
        observation_chars=observation_chars,
        max_question_chars=max_question_chars,
    )
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be 1 or more, not {samples!r}")
    if tools is None:
        from araft_lc.wiki.select import wikipedia_tool

        tools = [wikipedia_tool()]
    tools = list(tools)
    tool_names = [t.name for t in tools]
    check_tool_names(tool_names)
    by_name = {t.name.casefold(): t for t in tools}
    cards = [asdict(ToolCard.of(t)) for t in tools]  # what a record keeps of them (the recorder reads it)
    style = agent_prompt(model, prompt)
    style.render_system(tools)  # reads any prompt file now, never on the event loop of a server

    def end(status: Status, note: str, update: dict[str, Any], state: AgentState) -> dict[str, Any]:
        update.update(status=status, question=state["asked"], messages=[AIMessage(f"No answer: {note}")])
        return update

    def finish(state: AgentState, steps: list[Step], update: dict[str, Any]) -> dict[str, Any]:
        """``update`` with the steps, ended when the step cap is reached or when the caller's
        recursion limit leaves no graph step after this one (``remaining_steps`` is 1 there)."""
        update["steps"] = [s.to_dict() for s in steps]
        if len(steps) >= max_steps:
            status = _end_status(steps[-1])
            return end(status, f"the run ended with status {status} after {len(steps)} steps.", update, state)
        if state.get("remaining_steps", 2) <= 1:
            return end(
                "recursion_limit",
                f"LangGraph's recursion_limit stopped the run after {len(steps)} steps; raise it, or lower max_steps.",
                update,
                state,
            )
        return update

    def start(state: AgentState) -> dict[str, Any]:
        return {
            **new_question(state, max_question_chars),
            "steps": [],
            "pending": None,
            "answer": None,
            "status": "running",
            "started": time.time(),
        }

    def before_model(state: AgentState) -> Optional[dict[str, Any]]:
        """The run's end before a model call (time limit), else None."""
        if max_seconds is not None and time.time() - state.get("started", time.time()) > max_seconds:
            return end(
                "time_limit", f"the run took longer than {max_seconds} s ({len(_steps(state))} steps).", {}, state
            )
        return None

    def context_limit(state: AgentState, error: ContextLimitError) -> dict[str, Any]:
        """The run's end when its next prompt does not fit the model (the question itself, or a
        scratchpad grown past it): status ``context_limit``, and nothing was prefilled."""
        steps = len(_steps(state))
        where = "the question does not fit the model" if not steps else f"after {steps} steps the run outgrew the model"
        return end("context_limit", f"{where}: {error}.", {}, state)

    def after_model(state: AgentState, reply: Any) -> dict[str, Any]:
        steps = _steps(state)
        raw = cut_at_stop(message_text(reply))
        parsed = parse(raw, tool_names)
        if isinstance(parsed, Answer):
            steps.append(Step(parsed.thought, "Answer", parsed.answer, None, raw))
            return {
                "steps": [s.to_dict() for s in steps],
                "answer": parsed.answer,
                "status": "answered",
                "question": state["asked"],
                "messages": [AIMessage(parsed.answer)],
            }
        if isinstance(parsed, Action):
            update = {"pending": Step(parsed.thought, parsed.tool, parsed.tool_input, None, raw).to_dict()}
            return finish(state, steps, update)
        steps.append(Step(parsed.thought, None, None, parsed.reason, raw, error="parse_error"))
        return finish(state, steps, {})

    # A model that takes a deadline (AraftChatModel) stops generating at max_seconds; others
    # are bounded by their own request timeout.
    takes_deadline = max_seconds is not None and getattr(model, "accepts_deadline", False)

    def call_kwargs(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"stop": list(STOP)}
        if takes_deadline and max_seconds is not None:  # takes_deadline implies max_seconds
            kwargs["deadline"] = state.get("started", time.time()) + max_seconds
        sample = (config.get("configurable") or {}).get(SAMPLE_KEY)  # a run of self-consistency
        if sample is not None:
            kwargs["temperature"] = sample["temperature"]
            if sample["seed"] is not None:  # each step its own seed: reproducible, not repeated
                kwargs["seed"] = sample["seed"] + len(state.get("steps") or [])
        return kwargs

    def reason(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        ended = before_model(state)
        if ended is not None:
            return ended
        messages = render_messages(style, tools, state["asked"], _steps(state))
        try:
            reply = model.invoke(messages, config, **call_kwargs(state, config))
        except ContextLimitError as e:
            return context_limit(state, e)
        return after_model(state, reply)

    async def areason(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        ended = before_model(state)
        if ended is not None:
            return ended
        messages = render_messages(style, tools, state["asked"], _steps(state))
        try:
            reply = await model.ainvoke(messages, config, **call_kwargs(state, config))
        except ContextLimitError as e:
            return context_limit(state, e)
        return after_model(state, reply)

    def plan(state: AgentState) -> _ToolRun:
        pending = state.get("pending")
        assert pending is not None  # the act node runs only after reason left a pending tool call
        call = Step.from_dict(pending)
        assert call.action is not None and call.action_input is not None  # a parsed Action: both are set
        if repetition_guard and action_key(call) in {
            action_key(s) for s in _steps(state) if s.action and s.error is None
        }:
            return _ToolRun(
                call,
                observation=(
                    f"You already did {format_action(call.action, call.action_input)}; its observation "
                    "is above. Do something else: another query, or the answer."
                ),
                error="repeated_action",
            )
        tool = by_name.get(call.action.casefold())
        if tool is None:
            return _ToolRun(call, observation=no_such_tool(call.action, tool_names), error="unknown_tool")
        try:
            args = tool_args(tool, call.action_input)
        except ArgsError as e:
            return _ToolRun(call, observation=str(e), error="tool_error")
        if isinstance(args, dict):  # as a tool call: the tool answers with a ToolMessage and its status
            args = tool_call(tool.name, args)
        return _ToolRun(call, tool, args)

    def observed(
        state: AgentState, run: _ToolRun, output: Any = None, failure: Optional[Exception] = None
    ) -> dict[str, Any]:
        observation, error = run.observation or "", run.error
        if run.tool is not None:
            if isinstance(failure, ValidationError):
                observation, error = describe_error(run.tool, failure), "tool_error"
            elif isinstance(failure, ToolTimeout):
                observation, error = (
                    (f"The tool {run.tool.name} did not answer within {failure.seconds:.1f} s (timed out)."),
                    "tool_timeout",
                )
            elif failure is not None:  # a failing tool is an observation, not a crash
                observation, error = (
                    f"The tool {run.tool.name} failed ({type(failure).__name__}: {failure}).",
                    "tool_error",
                )
            else:
                observation = render_output(output)
                if isinstance(output, ToolMessage) and output.status == "error":
                    error = "tool_error"  # the tool handled its own failure (a backend outage)
        observation, observed_chars = cap_observation(observation, observation_chars)
        c = run.call
        steps = [
            *_steps(state),
            Step(c.thought, c.action, c.action_input, observation, c.raw, error=error, observed_chars=observed_chars),
        ]
        return finish(state, steps, {"pending": None})

    def tool_seconds(state: AgentState) -> Optional[float]:
        """How long the next tool call may take: its timeout, or the run's time left if sooner
        (0 once the run's time is up: the tool is not started)."""
        left = None if max_seconds is None else state.get("started", time.time()) + max_seconds - time.time()
        bounds = [b for b in (tool_timeout, left) if b is not None]
        return max(min(bounds), 0.0) if bounds else None

    def act(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        run = plan(state)
        if run.tool is None:
            return observed(state, run)
        try:
            output = run_tool(run.tool, run.input, config, tool_seconds(state))
        except Exception as e:
            return observed(state, run, failure=e)
        return observed(state, run, output)

    async def aact(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        run = plan(state)
        if run.tool is None:
            return observed(state, run)
        try:
            output = await arun_tool(run.tool, run.input, config, tool_seconds(state))
        except Exception as e:
            return observed(state, run, failure=e)
        return observed(state, run, output)

    def after_reason(state: AgentState) -> str:
        if state["status"] != "running":
            return END
        return "act" if state.get("pending") else "reason"

    def after_act(state: AgentState) -> str:
        return END if state["status"] != "running" else "reason"

    graph = StateGraph(AgentState, input_schema=AgentInput, output_schema=AgentOutput)
    graph.add_node("start", start)
    graph.add_node("reason", RunnableLambda(reason, afunc=areason, name="reason"))
    graph.add_node("act", RunnableLambda(act, afunc=aact, name="act"))
    graph.add_edge(START, "start")
    graph.add_edge("start", "reason")
    graph.add_conditional_edges("reason", after_reason, ["act", "reason", END])
    graph.add_conditional_edges("act", after_act, ["reason", END])
    if samples > 1:
        return self_consistent(
            as_agent(graph.compile(name=f"{name}-run"), style.version, cards),
            samples=samples,
            temperature=sample_temperature,
            seed=sample_seed,
            rule=vote,
            max_question_chars=max_question_chars,
            checkpointer=checkpointer,
            name=name,
            prompt_version=style.version,
            tools=cards,
        )
    return as_agent(graph.compile(checkpointer=checkpointer, name=name), style.version, cards)
