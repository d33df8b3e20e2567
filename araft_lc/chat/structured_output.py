"""Structured output for a model without a JSON mode: the schema in the prompt, the JSON parsed
out of the reply, and a bounded retry that shows the model its error.

``AraftChatModel.with_structured_output(schema)`` is ``model.bind(structured_output=...) | parser``.
The bound call (:func:`generate_json`) adds one instruction with the JSON schema after the
conversation, reads the first JSON object of the reply and checks its required keys; a reply that
fails is shown back with the error, at most ``retries`` times. The parser then builds the
pydantic object (or returns the dict).
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any, Callable, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

__all__ = ["first_json_object", "generate_json", "structured_runnable"]


def first_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (models wrap it in prose or code fences).

    Raises:
        ValueError: there is none.
    """
    decoder = json.JSONDecoder()
    for start in (i for i, c in enumerate(text) if c == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("the reply holds no JSON object")


def _instruction(schema: dict[str, Any]) -> str:
    return "Reply with one JSON object and nothing else. It must match this JSON schema:\n" + json.dumps(
        schema["parameters"], ensure_ascii=False
    )


def generate_json(
    complete: Callable[[Sequence[BaseMessage]], AIMessage],
    messages: Sequence[BaseMessage],
    schema: dict[str, Any],
    retries: int,
) -> AIMessage:
    """Ask ``complete`` for a JSON object matching ``schema`` (an OpenAI function dict); the
    reply's content is that object as JSON text, or the last raw reply if every try failed (the
    parser then raises, naming what came back)."""
    asked = [*messages, HumanMessage(_instruction(schema))]
    required = set(schema["parameters"].get("required", ()))
    for _ in range(retries + 1):
        reply = complete(asked)
        try:
            value = first_json_object(reply.text)
            missing = required - set(value)
            if missing:
                raise ValueError(f"the object lacks {', '.join(sorted(missing))}")
        except ValueError as e:
            asked = [*asked, AIMessage(reply.text), HumanMessage(f"That was not right: {e}. {_instruction(schema)}")]
            continue
        return AIMessage(
            json.dumps(value, ensure_ascii=False),
            usage_metadata=reply.usage_metadata,
            response_metadata=reply.response_metadata,
        )
    return reply


def structured_runnable(model: Any, schema: Any, *, include_raw: bool) -> Runnable:
    """``model`` bound to produce ``schema``, then parsed (LangChain's ``include_raw`` shape)."""
    function = convert_to_openai_tool(schema)["function"]
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)  # pydantic 2 or its v1
    parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    bound = model.bind(
        structured_output=function,
        ls_structured_output_format={"kwargs": {"method": "json_schema"}, "schema": function},
    )
    if not include_raw:
        return bound | parser
    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    failed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parsed.with_fallbacks([failed], exception_key="parsing_error")
