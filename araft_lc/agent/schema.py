"""What the Araft agent takes and returns (``AgentInput``, ``AgentOutput``), the compiled graph's
class (``AraftAgent``: input checks, ``as_tool``, ``prompt_version``) and the question check every
run starts with: shared by the single-run graph (``graph``) and self-consistency
(``self_consistency``), as langgraph's prebuilt agents keep their schemas beside their graphs."""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Optional, Sequence

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.channels import EphemeralValue
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from araft_lc.react.chat_format import message_text
from araft_lc.react.trajectory import Status, StepDict

__all__ = [
    "AGENT_TAG",
    "PROMPT_KEY",
    "TOOLS_KEY",
    "AgentInput",
    "AgentOutput",
    "AraftAgent",
    "QuestionInput",
    "as_agent",
    "asked_question",
    "new_question",
    "tool_reply",
]

# The graph's tag in callbacks, so a recorder finds the agent's own run inside any parent graph.
AGENT_TAG = "araft:agent"
PROMPT_KEY = "araft_prompt_version"  # the metadata key of the agent's prompt version
TOOLS_KEY = "araft_tools"  # the metadata key of the cards of the agent's tools, in the prompt's order


class AgentInput(TypedDict, total=False):
    """What a run takes: ``question``, or ``messages`` whose last human message is the question."""

    question: Annotated[Optional[str], EphemeralValue]  # this run's only: never reused by a later turn
    messages: Annotated[list[AnyMessage], add_messages]


class AgentOutput(TypedDict, total=False):
    """What a run returns: the conversation (the answer last), the question, the answer (None when
    the run ended without one), why it ended, and every step as plain JSON data."""

    messages: Annotated[list[AnyMessage], add_messages]
    question: Annotated[Optional[str], EphemeralValue]
    answer: Optional[str]
    status: Status
    steps: list[StepDict]


class QuestionInput(BaseModel):
    """The agent's input as a tool (``agent.as_tool()``)."""

    question: str = Field(description="a question to answer from Wikipedia")


class AraftAgent(CompiledStateGraph):
    """The compiled Araft graph; it names the input it takes when given something else."""

    @property
    def prompt_version(self) -> str:
        """The version of the prompt style the agent runs (``araft-zeroshot-turns-v1``, say)."""
        return str((self.config or {}).get("metadata", {}).get(PROMPT_KEY, ""))

    def _check_input(self, input: Any) -> None:
        if isinstance(input, str):
            raise TypeError(
                "the Araft agent takes a dict, not a string: invoke({'question': '...'}) "
                "or invoke({'messages': [HumanMessage('...')]})"
            )

    def as_tool(
        self,
        args_schema: Any = None,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        arg_types: Any = None,
    ) -> BaseTool:
        """The agent as a tool of one argument, ``question``, for another agent to call.

        The calling model receives the answer's text, or for a run that ends without one, its
        status and why (``No answer (step_limit): ...``), never a dump of the state. The whole
        output (steps, status, messages) is the tool message's ``artifact``
        (``response_format="content_and_artifact"``), for code that wants it.
        """
        if args_schema not in (None, QuestionInput) or arg_types is not None:
            raise TypeError(
                "the Araft agent's tool takes one argument, question: call as_tool(name=..., description=...)"
            )
        agent = self

        def ask(question: str, config: RunnableConfig) -> tuple[str, dict[str, Any]]:
            out = agent.invoke({"question": question}, config)
            return tool_reply(out), out

        async def aask(question: str, config: RunnableConfig) -> tuple[str, dict[str, Any]]:
            out = await agent.ainvoke({"question": question}, config)
            return tool_reply(out), out

        return StructuredTool.from_function(
            func=ask,
            coroutine=aask,
            name=name or self.get_name(),
            args_schema=QuestionInput,
            description=description or "Answers a question by searching Wikipedia, step by step (ReAct).",
            response_format="content_and_artifact",
        )

    def stream(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        self._check_input(input)
        return super().stream(input, *args, **kwargs)

    def astream(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        self._check_input(input)
        return super().astream(input, *args, **kwargs)


def tool_reply(output: dict[str, Any]) -> str:
    """What a run says to a model that called the agent as a tool: the answer, or the status of
    a run that ended without one and why."""
    if output.get("answer") is not None:
        return str(output["answer"])
    messages = output.get("messages") or []
    why = message_text(messages[-1]).removeprefix("No answer: ") if messages else ""
    return f"No answer ({output.get('status')}): {why}".rstrip(": ")


def asked_question(state: Mapping[str, Any], max_question_chars: Optional[int]) -> str:
    """The question a run starts on: ``question``, else the text of the last human message, on one
    line.

    Raises:
        ValueError: none, not text, or longer than ``max_question_chars``.
    """
    messages = state.get("messages") or []
    question = state.get("question")
    if not question and messages and isinstance(messages[-1], HumanMessage):
        question = message_text(messages[-1])
    if question is not None and not isinstance(question, str):
        raise ValueError(
            f"the question must be text, not a {type(question).__name__}: invoke with {{'question': '...'}}"
        )
    question = " ".join((question or "").split())
    if not question:
        raise ValueError(
            "the question is empty: invoke with {'question': '...'} or end 'messages' with a HumanMessage that has text"
        )
    if max_question_chars is not None and len(question) > max_question_chars:
        raise ValueError(
            f"the question is {len(question):,} characters, more than this agent takes "
            f"({max_question_chars:,}, max_question_chars): ask a shorter one"
        )
    return question


def new_question(state: Mapping[str, Any], max_question_chars: Optional[int]) -> dict[str, Any]:
    """The start of a run's state update: the question (``asked`` and ``question``), and the human
    message that carries it, unless the conversation already ends with it.

    Raises:
        ValueError: as ``asked_question``.
    """
    question = asked_question(state, max_question_chars)
    update: dict[str, Any] = {"asked": question, "question": question}
    messages = state.get("messages") or []
    if (
        not messages
        or not isinstance(messages[-1], HumanMessage)
        or " ".join(message_text(messages[-1]).split()) != question
    ):
        update["messages"] = [HumanMessage(question)]
    return update


def as_agent(compiled: Any, prompt_version: str, tools: Sequence[dict[str, Any]] = ()) -> AraftAgent:
    """A compiled graph as an ``AraftAgent``, tagged for the recorder, its prompt's version and its
    tools' cards (``ToolCard`` as dicts, as the prompt lists them) in the config's metadata: every
    trace of the run shows them, the recorder keeps the cards in the record, and they survive the
    copies with_config makes (``AraftAgent.prompt_version`` reads the version)."""
    compiled = compiled.with_config(
        tags=[AGENT_TAG], metadata={PROMPT_KEY: prompt_version, TOOLS_KEY: [dict(t) for t in tools]}
    )
    # compile() builds a CompiledStateGraph itself; the subclass only adds input checks and
    # as_tool's schema, so the compiled graph takes it as is (langgraph dev still sees a Pregel).
    compiled.__class__ = AraftAgent
    return compiled
