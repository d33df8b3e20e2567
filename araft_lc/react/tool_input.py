"""A tool's input in the Araft grammar: how the prompt shows it, and how ``action_input`` text
becomes the tool's arguments.

A tool of one argument (the Wikipedia tool, a calculator) takes the text (typed as its schema
says: ``3`` for an integer), and the prompt shows ``<input>``: the grammar the published adapters
were trained on. A tool of several arguments takes a JSON object, and the prompt shows its
fields with their types, e.g. ``{"a": <integer>, "b": <integer>}``. Text that does not fit is
answered with an observation that says what was expected, never an exception.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Optional, Protocol, Sequence, Union

from pydantic import BaseModel

if TYPE_CHECKING:
    from langchain_core.tools.base import ArgsSchema

__all__ = [
    "ToolLike",
    "ArgsError",
    "json_schema",
    "input_hint",
    "single_field",
    "tool_args",
    "args_text",
    "describe_error",
    "check_tool_names",
    "named_no_tool",
    "no_such_tool",
    "tool_call",
]


class ToolLike(Protocol):
    """What the prompt and the input grammar read of a tool: a ``BaseTool``, or the ``ToolCard``
    (``araft_lc.react.trajectory``) that records one."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def tool_call_schema(self) -> ArgsSchema: ...


class ArgsError(ValueError):
    """``action_input`` that does not fit the tool's arguments; the message is the observation."""


def json_schema(schema: ArgsSchema) -> dict[str, Any]:
    """A tool's argument schema as JSON schema: a dict as it is, a pydantic class's (v2, or the v1
    API's ``schema()``) as it generates it."""
    if isinstance(schema, dict):
        return schema
    if issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return schema.schema()


def _fields(tool: ToolLike) -> dict[str, dict[str, Any]]:
    """The tool's arguments as JSON-schema properties (MCP tools carry a dict schema already)."""
    try:
        schema = json_schema(tool.tool_call_schema)
    except Exception:
        return {}
    return dict(schema.get("properties") or {})


def _type_name(spec: dict[str, Any]) -> str:
    if "type" in spec:
        return str(spec["type"])
    options = [str(s.get("type")) for s in spec.get("anyOf", []) if s.get("type") and s.get("type") != "null"]
    return " or ".join(options) or "value"


def single_field(tool: ToolLike) -> str | None:
    """The name of the tool's only argument, or None when it takes several (or none)."""
    fields = _fields(tool)
    return next(iter(fields)) if len(fields) == 1 else None


def input_hint(tool: ToolLike) -> str:
    """What the prompt shows as the tool's ``action_input``."""
    fields = _fields(tool)
    if len(fields) <= 1:
        return "<input>"
    return "{" + ", ".join(f'"{name}": <{_type_name(spec)}>' for name, spec in fields.items()) + "}"


_FITS = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _typed(spec: dict[str, Any], text: str) -> Any:
    """``text`` as the JSON type ``spec`` names (``"3"`` for an integer is 3), else as it is."""
    kinds = {spec.get("type"), *(s.get("type") for s in spec.get("anyOf", []))} - {"null"}
    if "string" in kinds:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    untyped = kinds <= {None}  # no type named: any JSON value
    return (
        value if (untyped and value is not None) or any(_FITS.get(k, lambda v: False)(value) for k in kinds) else text
    )


def tool_args(tool: ToolLike, text: str) -> Union[str, dict[str, Any]]:
    """The tool's arguments for ``text``: ``{arg: value}`` (the value typed as the schema says)
    for a tool of one argument, the JSON object for a tool of several; the text itself for a
    tool with no argument schema.

    Raises:
        ArgsError: a tool of several arguments was not given a JSON object.
    """
    fields = _fields(tool)
    if not fields:
        return text
    if len(fields) == 1:
        name, spec = next(iter(fields.items()))
        # A one-argument tool may still be given its argument as a JSON object.
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict) and set(data) == {name}:
                return data
        return {name: _typed(spec, text)}
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ArgsError(f"The tool {tool.name} takes a JSON object {input_hint(tool)}, not {text!r}.")
    return data


def args_text(tool: ToolLike | None, args: Union[str, dict[str, Any]]) -> str:
    """The ``action_input`` text for tool-call ``args``, the inverse of :func:`tool_args`."""
    if isinstance(args, str):
        return args
    if tool is not None:
        name = single_field(tool)
        if name is not None and set(args) == {name}:
            return str(args[name])
    elif len(args) == 1:
        return str(next(iter(args.values())))
    return json.dumps(args, ensure_ascii=False)


def describe_error(tool: ToolLike, error: Exception) -> str:
    """An observation for arguments the tool's schema refused (a pydantic ValidationError)."""
    first = str(error).splitlines()
    detail = " ".join(first[1:3]).strip() if len(first) > 1 else str(error)
    return f"The tool {tool.name} takes {input_hint(tool)}: {detail}."


def no_such_tool(name: str, tool_names: Sequence[str]) -> str:
    """The observation for an action naming no tool: what there is to use instead."""
    return f"There is no tool named {name}. Use one of: {', '.join(tool_names)}, Answer."


def check_tool_names(names: Sequence[str]) -> None:
    """Refuse a tool named as the answer action, or two tools of one name (case-insensitively):
    the model could never call it, or could not tell which it calls.

    Raises:
        ValueError: naming the tool and the fix.
    """
    from araft_lc.react.parser import ANSWER

    seen: set[str] = set()
    for name in names:
        key = name.casefold()
        if key == ANSWER.casefold():
            raise ValueError(f"a tool is named {name!r}, the answer action's name: rename the tool")
        if key in seen:
            raise ValueError(f"two tools are named {name!r}: rename one (names are compared case-insensitively)")
        seen.add(key)


def named_no_tool(observation: Optional[str], name: str) -> bool:
    """Whether ``observation`` is ``no_such_tool``'s for an action that named ``name``."""
    return (observation or "").startswith(no_such_tool(name, []).partition(" Use one of")[0])


def tool_call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A LangChain tool call of ``name`` with ``args``, under a fresh id."""
    return {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "tool_call"}
