"""Training records as token ids, exactly as the model meets them at inference.

One tokenisation for the token budget of ``araft convert`` and for the trainers: the chat text
comes from ``araft_lc.react.chat_format`` (the tokenizer's chat template, else Llama-2 chat) and is
tokenised piece by piece, so a prompt is tokenised as the agent tokenises it and the loss mask
falls exactly on what the model writes. No BOS is added twice: the text carries its own.
"""

from __future__ import annotations

from typing import Any, Mapping

from araft_lc.react.chat_format import segments
from finetune.records import record_format

__all__ = ["load_tokenizer", "sft_tokens", "dpo_tokens", "record_tokens", "token_count", "record_length"]


def load_tokenizer(spec: str) -> Any:
    """The tokenizer of a local model spec (a preset, hf:PATH, a folder); it pads with EOS when it
    has no pad token.

    Raises:
        ValueError: it cannot be loaded, of whatever kind the cause (naming the folder and it).
    """
    from araft_lc.chat.model_spec import ModelSpec
    from araft_lc.runtime.torch.causal_lm import load_tokenizer as load

    return load(ModelSpec.parse(spec).local_id)


def _ids(tokenizer: Any, pieces: list[tuple[str, bool]]) -> dict[str, list[int]]:
    input_ids: list[int] = []
    mask: list[int] = []
    for text, trained in pieces:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        mask += [int(trained)] * len(ids)
    return {"input_ids": input_ids, "assistant_masks": mask}


def sft_tokens(tokenizer: Any, row: Mapping[str, Any]) -> dict[str, list[int]]:
    """``input_ids`` and ``assistant_masks`` (1 where the loss falls) of an SFT record.

    prompt/completion and messages: the loss is on the assistant turns (their end-of-turn token
    included); text (the original's format): on every token, as the original trained.
    """
    fmt = record_format(row)
    if fmt == "prompt_completion":
        pieces = segments(tokenizer, [*row["prompt"], *row["completion"]])
        # earlier assistant turns in the prompt (turns layout) are context, not targets
        n = sum(1 for t in row["completion"] if t["role"] == "assistant")
        marked = [i for i, (_, trained) in enumerate(pieces) if trained][: -n or None]
        return _ids(tokenizer, [(text, trained and i not in marked) for i, (text, trained) in enumerate(pieces)])
    if fmt == "messages":
        return _ids(tokenizer, segments(tokenizer, row["messages"]))
    if fmt == "text":
        return _ids(tokenizer, [(row["text"], True)])
    raise ValueError("a DPO record (prompt/chosen/rejected) where SFT records were expected: run `araft convert sft`")


def dpo_tokens(tokenizer: Any, row: Mapping[str, Any]) -> dict[str, list[int]]:
    """``prompt_ids``, ``chosen_ids``, ``rejected_ids`` of a DPO record (the shape TRL's collator takes)."""
    out: dict[str, list[int]] = {}
    for side in ("chosen", "rejected"):
        tokens = sft_tokens(tokenizer, {"prompt": row["prompt"], "completion": row[side]})
        n = tokens["assistant_masks"].index(1)
        out["prompt_ids"], out[f"{side}_ids"] = tokens["input_ids"][:n], tokens["input_ids"][n:]
    return out


def record_tokens(tokenizer: Any, row: Mapping[str, Any]) -> dict[str, list[int]]:
    """The token ids of any training record: ``sft_tokens`` or ``dpo_tokens``."""
    return dpo_tokens(tokenizer, row) if record_format(row) == "dpo" else sft_tokens(tokenizer, row)


def token_count(tokens: Mapping[str, list[int]]) -> int:
    """Tokens of a tokenised record: the whole sequence (SFT), or the prompt and the longer answer (DPO)."""
    if "prompt_ids" in tokens:
        return len(tokens["prompt_ids"]) + max(len(tokens["chosen_ids"]), len(tokens["rejected_ids"]))
    return len(tokens["input_ids"])


def record_length(tokenizer: Any, row: Mapping[str, Any]) -> int:
    """Tokens of a record: the whole sequence (SFT), or the prompt and the longer answer (DPO)."""
    return token_count(record_tokens(tokenizer, row))
