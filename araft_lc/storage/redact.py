"""Secrets never reach an output: every line of records, traces, logs and reports passes
:func:`redact` before it is written.

A secret is the value of a known credential variable in the environment (``OPENAI_API_KEY``,
``HF_TOKEN``, ...) or text shaped like a key (``sk-...``, ``hf_...``, ``Bearer ...``). A server
that echoes the key in an error message, which then lands in a record's ``error``, is the case
this exists for.
"""

from __future__ import annotations

import os
import re

__all__ = ["redact", "SECRET_ENV", "REDACTED"]

REDACTED = "[redacted]"
SECRET_ENV = (
    "OPENAI_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "ANTHROPIC_API_KEY",
    "ARAFT_API_KEY",
)
_SHAPED = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{16,})|(?<=Bearer )[A-Za-z0-9._\-]{8,}")
_MIN_SECRET = 6  # a placeholder like "EMPTY" is not a secret, and short values would over-redact


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``[redacted]``."""
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= _MIN_SECRET and value in text:
            text = text.replace(value, REDACTED)
    return _SHAPED.sub(REDACTED, text)
