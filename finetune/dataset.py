"""Training records (JSONL) -> a tokenised ``datasets.Dataset``, never cutting a target.

Records are tokenised by ``finetune.tokens`` (the agent's own chat rendering), so the trainers
see exactly what inference sees. A record longer than ``max_length`` is dropped and counted, or
fails the run (``too_long: fail``); a trainer never truncates one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from araft_lc.storage.jsonl import JsonlError, read_jsonl
from finetune.records import record_format
from finetune.tokens import record_tokens, token_count

__all__ = ["DataError", "TokenizedData", "read_records", "tokenize_records"]


class DataError(ValueError):
    """Records that cannot be trained on; the message says which file, line and fix."""


@dataclass
class TokenizedData:
    """The rows to train on and what happened to the rest."""

    rows: list[dict[str, Any]]
    records: int
    dropped: int
    max_length: int
    longest: int
    sha256: str
    prompt_style: Optional[str] = None  # the one prompt style the records render, where they say so

    def summary(self) -> dict[str, Any]:
        """What ``data.json`` holds beside the adapter; its ``prompt_style`` is the style the
        adapter runs with by default (``araft_lc.react.prompt.trained_prompt``)."""
        return {
            "records": self.records,
            "kept": len(self.rows),
            "dropped_too_long": self.dropped,
            "max_length": self.max_length,
            "longest": self.longest,
            "sha256": self.sha256,
            "prompt_style": self.prompt_style,
        }


def read_records(path: str, stage: str) -> tuple[list[dict[str, Any]], str]:
    """The records of ``path`` for ``stage`` ("sft" or "dpo") and the file's sha256
    (``araft_lc.storage.jsonl``'s error policy: a bad line is an error naming it, a torn last line is
    skipped with a warning).

    Raises:
        DataError: a missing, empty or non-JSONL file, a record of a newer format version, or
            records for the other stage.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path} does not exist: make records with `araft convert {stage}`")
    want = (
        "prompt/chosen/rejected (araft convert dpo)"
        if stage == "dpo"
        else "prompt/completion, messages or text (araft convert sft)"
    )

    def of_stage(row: dict[str, Any]) -> dict[str, Any]:
        fmt = record_format(row)
        if (fmt == "dpo") != (stage == "dpo"):
            raise ValueError(f"a {fmt} record, but {stage} trains on {want}")
        return row

    try:
        rows = [row for _, row in read_jsonl(p, of_stage, what=f"a {stage} training record")]
    except JsonlError as e:
        raise DataError(str(e)) from None
    if not rows:
        raise DataError(f"{path} holds no records: make them with `araft convert {stage}`")
    return rows, hashlib.sha256(p.read_bytes()).hexdigest()


def tokenize_records(
    tokenizer: Any, rows: list[dict[str, Any]], sha256: str, max_length: Optional[int], too_long: str
) -> TokenizedData:
    """Tokenise ``rows``; drop (or fail on) those longer than ``max_length`` (None: no limit)."""
    tokenized = [(token_count(t), t) for t in (record_tokens(tokenizer, row) for row in rows)]
    longest = max(n for n, _ in tokenized)
    limit = max_length or longest
    kept = [t for n, t in tokenized if n <= limit]
    dropped = len(tokenized) - len(kept)
    if dropped and too_long == "fail":
        raise DataError(
            f"{dropped} of {len(rows)} records are longer than max_length {limit} (longest "
            f"{longest}): raise max_length, or set too_long: drop to train without them"
        )
    if not kept:
        raise DataError(f"every record is longer than max_length {limit}: raise it (longest {longest})")
    styles = {row.get("prompt_style") for row in rows}
    style = styles.pop() if len(styles) == 1 else None  # records of several styles teach none of them
    return TokenizedData(kept, len(rows), dropped, limit, longest, sha256, style)
