"""Chat messages as role turns, and turns as the exact text a tokenizer sees.

One rendering for inference (``AraftChatModel``), for token budgets (``araft convert``) and for
training (``finetune``): the tokenizer's chat template when it has one, else the Llama-2 chat
format. The text carries its own special tokens; tokenize it with ``add_special_tokens=False``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from langchain_core.messages import BaseMessage

from araft_lc.llama2_format import llama2_prompt

__all__ = ["Turn", "to_turns", "render_chat", "segments"]

Turn = dict[str, str]
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def to_turns(messages: Sequence[BaseMessage]) -> list[Turn]:
    """LangChain messages -> ``[{"role": "system"|"user"|"assistant", "content": ...}]``."""
    turns = []
    for m in messages:
        if m.type not in _ROLES:
            raise ValueError(f"expected system, human and ai messages, not {m.type!r}")
        turns.append({"role": _ROLES[m.type], "content": m.text})
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
            raise ValueError("the chat template does not render a conversation as a prefix of its longer "
                             "continuation; train with the prompt/completion format instead")
        pieces += [(prompt[len(done):], False), (whole[len(prompt):], True)]
        done = whole
    return [(text, mask) for text, mask in pieces if text]
