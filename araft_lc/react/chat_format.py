"""Chat messages as role turns, and turns as the exact text a tokenizer sees.

One rendering for inference (``AraftChatModel``), for token budgets (``araft convert``) and for
training (``finetune``): the tokenizer's chat template when it has one, else the Llama-2 chat
format. The text carries its own special tokens; tokenize it with ``add_special_tokens=False``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from langchain_core.messages import BaseMessage

from araft_lc.react.llama2_format import llama2_prompt
from araft_lc.react.parser import format_action

__all__ = ["Turn", "message_text", "to_turns", "render_chat", "segments"]

Turn = dict[str, str]
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def message_text(message: Any) -> str:
    """The text of a message (its text content blocks joined, where its content is a list), or a
    plain string as it is."""
    if isinstance(message, str):
        return message
    text = getattr(message, "text", None)
    if callable(text) and not isinstance(text, str):  # langchain-core before 1.0: a method
        text = text()
    return text if isinstance(text, str) else str(getattr(message, "content", message))


def to_turns(messages: Sequence[BaseMessage]) -> list[Turn]:
    """LangChain messages -> ``[{"role": "system"|"user"|"assistant", "content": ...}]``.

    Any LangChain history renders: an AI message's tool calls are written as Araft actions, a
    tool's result as the user turn ``Observation: ...``, and consecutive turns of one role are
    joined (the Llama-2 format, like many chat templates, needs the roles to alternate).
    """
    turns: list[Turn] = []
    for m in messages:
        content: str
        if m.type in _ROLES:
            role, content = _ROLES[m.type], m.text
        elif m.type == "tool":
            role, content = "user", f"Observation: {m.text}"
        else:
            raise ValueError(f"expected system, human, ai and tool messages, not {m.type!r}")
        calls = getattr(m, "tool_calls", None) or []
        if calls:
            actions = [f"Action: {format_action(c['name'], json.dumps(c['args'], ensure_ascii=False))}" for c in calls]
            content = "\n".join([content, *actions] if content.strip() else actions)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + content
        else:
            turns.append({"role": role, "content": content})
    return turns


def render_chat(tokenizer: Any, turns: Sequence[Mapping[str, str]], add_generation_prompt: bool = True) -> str:
    """``turns`` as text: for generation (ending with a user turn) or whole (ending with assistant)."""
    turns = [dict(t) for t in turns]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=add_generation_prompt)
    bos, eos = tokenizer.bos_token or "<s>", tokenizer.eos_token or "</s>"
    if turns and turns[-1]["role"] == "assistant":
        return f"{llama2_prompt(turns[:-1], bos, eos)} {turns[-1]['content'].strip()} {eos}"
    return llama2_prompt(turns, bos, eos)


def segments(tokenizer: Any, turns: Sequence[Mapping[str, str]]) -> list[tuple[str, bool]]:
    """The text of a conversation cut into pieces, each marked True when it is an assistant turn.

    An assistant piece is exactly what the model generates at inference after the generation
    prompt of the turns before it (its end-of-turn token included), so training on these pieces
    trains what inference asks. Raises ValueError when the chat format is not prefix-preserving.
    """
    pieces: list[tuple[str, bool]] = []
    done = ""
    for k, turn in enumerate(turns):
        if turn["role"] != "assistant":
            continue
        prompt = render_chat(tokenizer, turns[:k], add_generation_prompt=True)
        whole = render_chat(tokenizer, turns[: k + 1], add_generation_prompt=False)
        if not prompt.startswith(done) or not whole.startswith(prompt):
            raise ValueError(
                "the chat template does not render a conversation as a prefix of its longer "
                "continuation; train with the prompt/completion format instead"
            )
        pieces += [(prompt[len(done) :], False), (whole[len(prompt) :], True)]
        done = whole
    return [(text, mask) for text, mask in pieces if text]
