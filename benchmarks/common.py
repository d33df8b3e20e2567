"""What every benchmark shares: where the sample data is, what machine ran it, and how a result
is printed and saved (JSON beside RESULTS.md)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Optional

__all__ = ["DATA", "stamp", "emit", "decode_tok_s", "stop_process_group"]

DATA = Path(os.environ.get("ARAFT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa"))


def stamp(command: str) -> dict[str, str]:
    """The command, the date and the machine, for the head of a result."""
    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def emit(result: dict[str, Any], out: Optional[str]) -> int:
    """Print ``result`` and write it to ``out`` (when given); the exit code."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
    return 0


def decode_tok_s(model: Any, prompt: Any, new_tokens: int) -> float:
    """Batch-1 decode tokens/s of a chat model's ``stream``, first chunk to last: prefill (before
    the first token) is not counted."""
    stamps, produced = [], 0
    for chunk in model.stream(prompt, max_tokens=new_tokens):
        stamps.append(time.perf_counter())
        produced = (chunk.usage_metadata or {}).get("output_tokens", produced)
    return round((produced - 1) / (stamps[-1] - stamps[0]), 2) if produced > 1 and stamps[-1] > stamps[0] else 0.0


def stop_process_group(proc: Any, timeout: float = 30) -> None:
    """Stop a server started in its own process group: SIGTERM, then SIGKILL after ``timeout``."""
    import signal
    import subprocess

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
