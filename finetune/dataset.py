"""Training records (JSONL) -> a tokenised ``datasets.Dataset``, never cutting a target.

Records are tokenised by ``finetune.tokens`` (the agent's own chat rendering), so the trainers
see exactly what inference sees. A record longer than ``max_length`` is dropped and counted, or
fails the run (``too_long: fail``); a trainer never truncates one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from finetune.tokens import record_format, record_tokens, token_count

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

    def summary(self) -> dict[str, Any]:
        return {"records": self.records, "kept": len(self.rows), "dropped_too_long": self.dropped,
                "max_length": self.max_length, "longest": self.longest, "sha256": self.sha256}


def read_records(path: str, stage: str) -> tuple[list[dict[str, Any]], str]:
    """The records of ``path`` for ``stage`` ("sft" or "dpo") and the file's sha256.

    Raises:
        DataError: a missing, empty or non-JSONL file, or records for the other stage.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path} does not exist: make records with `araft convert {stage}`")
    raw = p.read_bytes()
    rows = []
    for lineno, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            fmt = record_format(row)
        except (json.JSONDecodeError, ValueError, TypeError) as e:
            raise DataError(f"{path}:{lineno}: {e}") from None
        if (fmt == "dpo") != (stage == "dpo"):
            want = "prompt/chosen/rejected (araft convert dpo)" if stage == "dpo" else \
                "prompt/completion, messages or text (araft convert sft)"
            raise DataError(f"{path}:{lineno}: a {fmt} record, but {stage} trains on {want}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path} holds no records: make them with `araft convert {stage}`")
    return rows, hashlib.sha256(raw).hexdigest()


def tokenize_records(tokenizer: Any, rows: list[dict[str, Any]], sha256: str,
                     max_length: Optional[int], too_long: str) -> TokenizedData:
    """Tokenise ``rows``; drop (or fail on) those longer than ``max_length`` (None: no limit)."""
    tokenized = [(token_count(t), t) for t in (record_tokens(tokenizer, row) for row in rows)]
    longest = max(n for n, _ in tokenized)
    limit = max_length or longest
    kept = [t for n, t in tokenized if n <= limit]
    dropped = len(tokenized) - len(kept)
    if dropped and too_long == "fail":
        raise DataError(f"{dropped} of {len(rows)} records are longer than max_length {limit} (longest "
                        f"{longest}): raise max_length, or set too_long: drop to train without them")
    if not kept:
        raise DataError(f"every record is longer than max_length {limit}: raise it (longest {longest})")
    return TokenizedData(kept, len(rows), dropped, limit, longest, sha256)
