"""What every benchmark shares: where the sample data is, what machine ran it, and how a result
is printed and saved (JSON beside RESULTS.md)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Optional

__all__ = ["DATA", "stamp", "emit"]

DATA = Path(os.environ.get("ARAFT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa"))


def stamp(command: str) -> dict[str, str]:
    """The command, the date and the machine, for the head of a result."""
    return {"command": command, "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}


def emit(result: dict[str, Any], out: Optional[str]) -> int:
    """Print ``result`` and write it to ``out`` (when given); the exit code."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
    return 0
