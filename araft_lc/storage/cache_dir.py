"""Where Araft keeps what it derives once and reuses: converted models and built indexes."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(kind: str) -> Path:
    """``$ARAFT_CACHE_DIR/<kind>`` (default ``~/.cache/araft/<kind>``), created on demand."""
    root = Path(os.environ.get("ARAFT_CACHE_DIR") or Path.home() / ".cache" / "araft")
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
