"""LangChain tool calling on a ReAct-tuned model.

``AraftChatModel.bind_tools(tools)`` does not teach the model a new format: it renders the
conversation into the Araft prompt the adapters were trained on, and reads the model's
``Action:`` back as ``AIMessage.tool_calls``. A conversation from ``create_agent`` or LangGraph's
``ToolNode``::

    [system?] human(question) ai(tool_calls) tool(result) ai(tool_calls) tool(result) ...

becomes the Araft prompt for the question (the last human message) with one step per tool call
(its thought, ``[action: NAME, action_input: ...]``) and the tool's result as its
``Observation:``. The output then becomes an ``AIMessage`` with one tool call, or, for
``[action: Answer, ...]``, the answer as content and no tool calls. An output that does not
parse (or whose input does not fit the tool) is shown to the model as an observation and tried
again, a bounded number of times, exactly as the Araft graph does.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional, Sequence

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    UsageMetadata,
)
from langchain_core.utils.function_calling import convert_to_openai_tool

from araft_lc.react.chat_format import message_text
from araft_lc.react.parser import Action, Answer, parse
from araft_lc.react.prompt import PromptStyle, load_prompt, render_messages, render_step, step_body
from araft_lc.react.tool_input import ArgsError, args_text, no_such_tool, tool_args, tool_call
from araft_lc.react.trajectory import Step, ToolCard

__all__ = ["as_chunk", "call_tools", "tool_specs", "react_prompt", "read_reply", "with_retry_step"]


def tool_specs(tools: Sequence[Any]) -> list[ToolCard]:
    """Any tool form LangChain accepts (a ``BaseTool``, a function, a pydantic class, an OpenAI
    dict) as the ``ToolCard``s a prompt shows (they quack like a ``BaseTool`` for ``tool_input``)."""
    specs = []
    for t in tools:
        function = convert_to_openai_tool(t)["function"]
        specs.append(
            ToolCard(
                function["name"],
                function.get("description") or "",
                function.get("parameters") or {"type": "object", "properties": {}},
            )
        )
    return specs


def _thought(message: AIMessage) -> str:
    text = " ".join(message_text(message).split())
    return text[len("Thought:") :].strip() if text.lower().startswith("thought:") else text


def react_prompt(style: PromptStyle, specs: Sequence[ToolCard], messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The Araft prompt for a tool-calling conversation (see the module docstring).

    A caller's own system message goes before the Araft instructions.

    Raises:
        ValueError: no human message to answer.
    """
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=None)
    if start is None:
        raise ValueError("tool calling needs a human message with the question")
    question = " ".join(message_text(messages[start]).split())
    by_name = {s.name: s for s in specs}
    results = {m.tool_call_id: m for m in messages[start:] if isinstance(m, ToolMessage)}
    steps: list[Step] = []
    for m in messages[start + 1 :]:
        if not isinstance(m, AIMessage):
            continue
        for k, call in enumerate(m.tool_calls):
            result = results.get(call["id"]) if call["id"] is not None else None
            steps.append(
                Step(
                    thought=_thought(m) if k == 0 else "",
                    action=call["name"],
                    action_input=args_text(by_name.get(call["name"]), call["args"]),
                    observation=" ".join(message_text(result).split()) if result is not None else "(no result)",
                    raw="",
                )
            )
    rendered = render_messages(style, specs, question, steps)
    own = [message_text(m) for m in messages if isinstance(m, SystemMessage) and message_text(m).strip()]
    if own:
        rendered[0] = SystemMessage("\n\n".join([*own, message_text(rendered[0])]))
    return rendered


def read_reply(raw: str, specs: Sequence[ToolCard]) -> tuple[Optional[AIMessage], Optional[Step]]:
    """The model's text as an ``AIMessage`` (a tool call, or the answer), or, when it does not
    parse or fit, the failed step to show the model before it tries again."""
    parsed = parse(raw, [s.name for s in specs])
    if isinstance(parsed, Answer):
        return AIMessage(parsed.answer, response_metadata={"thought": parsed.thought}), None
    if isinstance(parsed, Action):
        spec = next((s for s in specs if s.name == parsed.tool), None)
        if spec is None:
            return None, Step(
                parsed.thought,
                parsed.tool,
                parsed.tool_input,
                no_such_tool(parsed.tool, [s.name for s in specs]),
                raw,
                error="unknown_tool",
            )
        try:
            args = tool_args(spec, parsed.tool_input)
        except ArgsError as e:
            return None, Step(parsed.thought, parsed.tool, parsed.tool_input, str(e), raw, error="tool_error")
        if isinstance(args, str):  # a tool without an argument schema
            args = {}
        return AIMessage(
            f"Thought: {parsed.thought}" if parsed.thought else "", tool_calls=[tool_call(spec.name, args)]
        ), None
    return None, Step(parsed.thought, None, None, parsed.reason, raw, error="parse_error")


def with_retry_step(prompt: list[BaseMessage], style: PromptStyle, step: Step) -> list[BaseMessage]:
    """``prompt`` with a failed step and its observation added, in the style's layout."""
    if style.layout == "scratchpad":
        last = prompt[-1]
        return [*prompt[:-1], HumanMessage(f"{message_text(last)}\n{render_step(step)}")]
    return [*prompt, AIMessage(step_body(step)), HumanMessage(f"Observation: {step.observation}")]


def call_tools(
    complete: Callable[[Sequence[BaseMessage]], AIMessage],
    messages: Sequence[BaseMessage],
    tools: Sequence[Any],
    prompt: str,
    retries: int,
) -> AIMessage:
    """One tool-calling turn: ``messages`` rendered into the Araft ``prompt`` style with
    ``tools``, and ``complete``'s reply (a completion that stops at ``Observation:``) read back
    as a tool call or the answer. Output that does not parse or fit is shown to the model as an
    observation and tried again, at most ``retries`` times; still unusable, the raw text comes
    back with no tool call (which ends a tool loop), its reason in ``araft_error``. The usage
    is the sum over the tries; ``raw`` is the last reply's text."""
    style = load_prompt(prompt)
    specs = tool_specs(tools)
    react = react_prompt(style, specs, messages)
    input_tokens = output_tokens = 0
    for _ in range(retries + 1):
        reply = complete(react)
        if reply.usage_metadata is not None:
            input_tokens += reply.usage_metadata.get("input_tokens", 0)
            output_tokens += reply.usage_metadata.get("output_tokens", 0)
        message, failed = read_reply(reply.text, specs)
        if message is not None:
            break
        assert failed is not None  # read_reply gives the message or the failed step
        react = with_retry_step(react, style, failed)
    else:
        assert failed is not None  # every try ended without a message: each left its failed step
        message = AIMessage(reply.text, response_metadata={"araft_error": failed.observation})
    message.usage_metadata = UsageMetadata(
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
    )
    message.response_metadata.update(reply.response_metadata, raw=reply.text)
    return message


def as_chunk(message: AIMessage) -> AIMessageChunk:
    """A whole tool-calling (or JSON) turn as the one chunk a stream of it yields."""
    return AIMessageChunk(
        content=message.content,
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        chunk_position="last",
        tool_call_chunks=[
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": k, "type": "tool_call_chunk"}
            for k, c in enumerate(message.tool_calls)
        ],
    )
