"""Append-only JSONL files that survive ``kill -9`` and concurrent writers.

Each record is one ``write`` of one whole line to a file opened with ``O_APPEND``, under an
exclusive ``flock``, then ``fsync``: a line is either all there or, if the process died inside
the write, a torn tail without a newline, which :func:`read_ids` repairs (truncates) on
resume.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

from araft_lc.redact import redact

__all__ = ["JsonlSink", "repair_tail", "read_ids"]


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline) off ``path``; returns the bytes removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # Find the last newline; everything after it is the torn record.
        pos = size - 1
        while pos > 0:
            step = min(4096, pos)
            f.seek(pos - step)
            block = f.read(step)
            i = block.rfind(b"\n")
            if i != -1:
                keep = pos - step + i + 1
                break
            pos -= step
        else:
            keep = 0
        f.truncate(keep)
        return size - keep


def read_ids(path: Path, key: str | Callable[[dict[str, Any]], str] = "question_id") -> set[str]:
    """The ``key`` of every whole line of ``path`` (after repairing a torn tail): a field name, or
    a function of the line's record."""
    get = key if callable(key) else (lambda row: row[key])
    what = repr(key) if isinstance(key, str) else f"a {getattr(key, '__name__', 'key')}"
    if not path.exists():
        return set()
    repair_tail(path)
    ids = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    ids.add(str(get(json.loads(line))))
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                    raise ValueError(f"{path}:{lineno}: not a record with {what}; move the file away or fix the line") from None
    return ids


class JsonlSink:
    """Writes dicts (or objects with ``to_dict``) as lines; thread- and process-safe."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self.written = 0

    def write(self, record: Any) -> None:
        data = record.to_dict() if hasattr(record, "to_dict") else record
        line = (redact(json.dumps(data, ensure_ascii=False)) + "\n").encode("utf-8")
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                os.write(self._fd, line)
                os.fsync(self._fd)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self.written += 1

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> "JsonlSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
