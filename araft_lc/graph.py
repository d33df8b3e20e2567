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
recursion limit is ~10k supersteps and would not stop a loop).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Optional, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import TypedDict

from araft_lc.chat_model import cut_at_stop_strings
from araft_lc.parser import Action, Answer, format_action, parse
from araft_lc.prompt import STOP, PromptStyle, load_prompt, render_messages
from araft_lc.trajectory import Status, Step, action_key

__all__ = ["AgentState", "create_araft_agent", "cut_at_stop", "message_text"]


class AgentState(TypedDict, total=False):
    """The graph's state. Input: ``question`` or ``messages`` (the last human message is asked)."""

    question: str
    messages: Annotated[list[AnyMessage], add_messages]
    steps: list[Step]
    pending: Optional[Step]  # a parsed tool call waiting for the act node
    answer: Optional[str]
    status: Status
    started: float  # time.time() at the start node, for max_seconds


def message_text(message: Any) -> str:
    """The text of a message whose content may be a string or a list of content blocks."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def cut_at_stop(text: str, stop: Sequence[str] = STOP) -> str:
    """Cut ``text`` at the first stop string, for models that do not honour ``stop`` themselves."""
    return cut_at_stop_strings(text, stop)[0]


def _end_status(step: Step) -> Status:
    if step.error == "parse_error":
        return "parse_error"
    if step.error in ("tool_error", "unknown_tool"):
        return "tool_error"
    return "step_limit"


def create_araft_agent(
    model: BaseChatModel,
    tools: Optional[Sequence[BaseTool]] = None,
    *,
    prompt: str | PromptStyle = "fewshot",
    max_steps: int = 5,
    repetition_guard: bool = False,
    max_seconds: Optional[float] = None,
    checkpointer: Any = None,
    name: str = "araft",
) -> CompiledStateGraph:
    """Build the Araft agent graph.

    Args:
        model: any LangChain chat model (``AraftChatModel``, ``ChatOpenAI`` on a vLLM server, a
            fake model in tests). It is called with ``stop=["Observation:"]``.
        tools: LangChain tools; the prompt lists them and the parser accepts their names. The
            default is the Wikipedia tool over ``$ARAFT_CORPUS`` when set, else live Wikipedia.
        prompt: a prompt style name (``fewshot``, ``zeroshot``), a YAML path or a ``PromptStyle``.
        max_steps: model calls per run, parse errors included (the original's cap: 5).
        repetition_guard: answer an action identical to an earlier one with a note instead of
            running it again (off by default, so the original behaviour can be measured).
        max_seconds: wall time per run: no step starts after this many seconds, and the run
            ends with status ``time_limit`` (each step is itself bounded by the model's token
            limit and the tool's timeout). None: no limit.
        checkpointer: passed to ``compile`` (for threads, interrupts, LangGraph Studio).
        name: the graph's name in traces.

    Returns:
        A compiled graph: ``invoke``/``stream``/``batch``/``ainvoke`` take ``{"question": str}`` or
        ``{"messages": [HumanMessage(...)]}`` and return the state: ``answer``, ``status``,
        ``steps`` and ``messages`` (with the answer as the last AI message).

    Raises:
        ValueError: ``max_steps`` below 1, ``max_seconds`` not positive, or two tools with the
            same name.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    if tools is None:
        from araft_lc.tools.select import wikipedia_tool

        tools = [wikipedia_tool()]
    tools = list(tools)
    by_name = {t.name.casefold(): t for t in tools}
    if len(by_name) != len(tools):
        raise ValueError("tool names must be unique (case-insensitively)")
    tool_names = [t.name for t in tools]
    style = prompt if isinstance(prompt, PromptStyle) else load_prompt(prompt)

    def finish(steps: list[Step], update: dict[str, Any]) -> dict[str, Any]:
        """Add the end of the run to ``update`` when the step cap is reached."""
        update["steps"] = steps
        if len(steps) >= max_steps:
            status = _end_status(steps[-1])
            update["status"] = status
            update["messages"] = [
                AIMessage(f"No answer: the run ended with status {status} after {len(steps)} steps.")
            ]
        return update

    def start(state: AgentState) -> dict[str, Any]:
        question = state.get("question")
        messages = state.get("messages") or []
        if not question:
            humans = [m for m in messages if isinstance(m, HumanMessage)]
            question = message_text(humans[-1]) if humans else ""
        question = " ".join(str(question).split())
        if not question:
            raise ValueError(
                "the question is empty: invoke with {'question': '...'} or a HumanMessage with text"
            )
        update: dict[str, Any] = {
            "question": question, "steps": [], "pending": None, "answer": None, "status": "running",
            "started": time.time(),
        }
        if not messages or message_text(messages[-1]).strip() != question:
            update["messages"] = [HumanMessage(question)]
        return update

    def reason(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        steps = list(state.get("steps") or [])
        if max_seconds is not None and time.time() - state.get("started", time.time()) > max_seconds:
            return {
                "status": "time_limit",
                "messages": [AIMessage(f"No answer: the run took longer than {max_seconds} s "
                                       f"({len(steps)} steps).")],
            }
        prompt_messages = render_messages(style, tools, state["question"], steps)
        reply = model.invoke(prompt_messages, config, stop=list(STOP))
        raw = cut_at_stop(message_text(reply))
        parsed = parse(raw, tool_names)
        if isinstance(parsed, Answer):
            steps.append(Step(parsed.thought, "Answer", parsed.answer, None, raw))
            return {
                "steps": steps, "answer": parsed.answer, "status": "answered",
                "messages": [AIMessage(parsed.answer)],
            }
        if isinstance(parsed, Action):
            return {"pending": Step(parsed.thought, parsed.tool, parsed.tool_input, None, raw)}
        steps.append(Step(parsed.thought, None, None, parsed.reason, raw, error="parse_error"))
        return finish(steps, {})

    def act(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        steps = list(state.get("steps") or [])
        call = state["pending"]
        assert call is not None and call.action is not None and call.action_input is not None
        tool = by_name.get(call.action.casefold())
        error = None
        if repetition_guard and action_key(call) in {action_key(s) for s in steps if s.action and s.error is None}:
            error = "repeated_action"
            observation = (
                f"You already did {format_action(call.action, call.action_input)}; its observation "
                "is above. Do something else: another query, or the answer."
            )
        elif tool is None:
            error = "unknown_tool"
            observation = (
                f"There is no tool named {call.action}. Use one of: {', '.join(tool_names)}, Answer."
            )
        else:
            try:
                observation = " ".join(str(tool.invoke(call.action_input, config)).split())
            except Exception as e:  # noqa: BLE001 - a failing tool is an observation, not a crash
                error = "tool_error"
                observation = f"The tool {tool.name} failed ({type(e).__name__}: {e})."
        steps.append(
            Step(call.thought, call.action, call.action_input, observation, call.raw, error=error)
        )
        return finish(steps, {"pending": None})

    def after_reason(state: AgentState) -> str:
        if state["status"] != "running":
            return END
        return "act" if state.get("pending") else "reason"

    def after_act(state: AgentState) -> str:
        return END if state["status"] != "running" else "reason"

    graph = StateGraph(AgentState)
    graph.add_node("start", start)
    graph.add_node("reason", reason)
    graph.add_node("act", act)
    graph.add_edge(START, "start")
    graph.add_edge("start", "reason")
    graph.add_conditional_edges("reason", after_reason, ["act", "reason", END])
    graph.add_conditional_edges("act", after_act, ["reason", END])
    return graph.compile(checkpointer=checkpointer, name=name)
