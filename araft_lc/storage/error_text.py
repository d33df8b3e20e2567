"""An exception as one line of text, for the one-line errors every command prints."""

from __future__ import annotations

from typing import Optional

__all__ = ["error_text"]


def error_text(e: BaseException, limit: Optional[int] = 300, *, with_type: bool = True) -> str:
    """``Type: message`` on one line (the libraries' messages run over several lines), cut at
    ``limit`` characters; without ``with_type``, the message alone. A message-less exception is
    its type's name."""
    text = " ".join(str(e).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    if not text:
        return type(e).__name__
    return f"{type(e).__name__}: {text}" if with_type else text
