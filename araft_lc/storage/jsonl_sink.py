"""Append-only JSONL files that survive ``kill -9`` and concurrent writers.

Each record is one whole line appended to a file opened with ``O_APPEND``, under an exclusive
``flock``, then ``fsync``: a line is either all there or, if the process died inside the write,
a torn tail without a newline, which :func:`read_ids` repairs (truncates) on resume. A write
that fails (a full disk, an I/O error) cuts its own partial line off again and raises
:class:`~araft_lc.storage.write_error.WriteError`; the sink then refuses further writes, so nothing is
ever appended after a torn line. Files are read back by ``araft_lc.storage.jsonl``.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

from araft_lc.storage.jsonl import read_jsonl
from araft_lc.storage.redact import redact
from araft_lc.storage.write_error import WriteError, writing

__all__ = ["JsonlSink", "repair_tail", "read_ids"]


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline) off ``path``; returns the bytes removed.
    A whole file is only read, so a finished run's records can be read from read-only media."""
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return 0
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
    with writing(path), open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
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
        os.fsync(f.fileno())
        return size - keep


def read_ids(path: Path, key: str | Callable[[dict[str, Any]], str] = "question_id") -> set[str]:
    """The ``key`` of every whole line of ``path`` (after repairing a torn tail): a field name, or
    a function of the line's record.

    Raises:
        JsonlError: a line that is not a record with the key (``file:line`` and the fix).
    """
    get = key if callable(key) else (lambda row: row[key])
    what = repr(key) if isinstance(key, str) else f"a {getattr(key, '__name__', 'key')}"
    if not path.exists():
        return set()
    repair_tail(path)
    return {
        row_id
        for _, row_id in read_jsonl(
            path, lambda row: str(get(row)), what=f"a record with {what}", fix="move the file away or fix the line"
        )
    }


class JsonlSink:
    """Writes dicts (or objects with ``to_dict``) as lines; thread- and process-safe.

    Raises (from ``write``):
        WriteError: the line could not be written whole and fsynced (naming the file).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder: name a .jsonl file to write")
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_tail(self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self._failed: WriteError | None = None
        self.written = 0

    def write(self, record: Any) -> None:
        data = record.to_dict() if hasattr(record, "to_dict") else record
        line = (redact(json.dumps(data, ensure_ascii=False)) + "\n").encode("utf-8")
        with self._lock:
            if self._failed is not None:
                raise self._failed
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                start = os.lseek(self._fd, 0, os.SEEK_END)
                try:
                    view = memoryview(line)
                    while view:  # a short write (a disk filling up) is followed by the rest or an error
                        view = view[os.write(self._fd, view) :]
                    os.fsync(self._fd)
                except OSError as e:
                    try:  # take the partial line back; if even that fails, the next open repairs it
                        os.ftruncate(self._fd, start)
                        os.fsync(self._fd)
                    except OSError:
                        pass
                    self._failed = WriteError(self.path, e)
                    raise self._failed from e
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self.written += 1

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
