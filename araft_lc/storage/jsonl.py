"""The one reader of the JSONL files araft writes (trajectories, training records, logs), with
one error policy.

- A blank line is passed over.
- A line that is not a JSON object, or that ``parse`` refuses, is a :class:`JsonlError`: one
  line naming ``file:line``, what was expected and the fix. With ``on_bad`` (the user asked to
  skip such lines) the error is handed to it instead and the line is skipped.
- The last line, when it has no newline and is not JSON, is a line torn by a writer that
  died inside its append (``kill -9``): it is skipped with a warning naming it, never an error,
  and never repaired here (reading does not write; ``jsonl_sink.repair_tail`` cuts it off
  before a run appends again). A last line that is JSON is whole: read, newline or not.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

from araft_lc.storage.error_text import error_text

__all__ = ["JsonlError", "read_jsonl"]

T = TypeVar("T")


class JsonlError(ValueError):
    """A line of a JSONL file that is not the record expected; the message is one line naming
    the file, the line and the fix."""

    def __init__(self, path: str | Path, lineno: int, problem: str, fix: str):
        super().__init__(f"{path}:{lineno}: {problem}{'; ' + fix if fix else ''}")
        self.path, self.lineno = Path(path), lineno


class _BadLine(Exception):
    def __init__(self, problem: str, unreadable: bool):
        super().__init__(problem)
        self.problem, self.unreadable = problem, unreadable  # unreadable: not UTF-8 JSON at all


def _object(text: str) -> dict[str, Any]:
    row = json.loads(text)
    if not isinstance(row, dict):
        raise ValueError(f"a JSON {type(row).__name__}, not an object")
    return row


def _same(row: dict[str, Any]) -> Any:
    return row


def read_jsonl(
    path: str | Path,
    parse: Callable[[dict[str, Any]], T] = _same,
    *,
    what: str = "a JSON object",
    fix: str = "",
    on_bad: Optional[Callable[[JsonlError], None]] = None,
) -> Iterator[tuple[int, T]]:
    """``(line number, parse(row))`` for each record line of ``path``, in order.

    Args:
        parse: turns a line's JSON object into the record (raising ValueError, TypeError,
            KeyError or AttributeError when it is not one).
        what: what a line should be, for the error (``"a trajectory record"``).
        fix: what the user can do about a bad line, for the error.
        on_bad: called with the error of each bad line, which is then skipped; None: raise it.

    Raises:
        JsonlError: a bad line (without ``on_bad``).
        OSError: the file cannot be opened.
    """
    with open(path, "rb") as f:
        lines = iter(f)
        raw = next(lines, None)
        lineno = 0
        while raw is not None:
            lineno += 1
            following = next(lines, None)
            if raw.strip():
                try:
                    yield lineno, _parse_line(raw, parse, what)
                except _BadLine as e:
                    if e.unreadable and following is None and not raw.endswith(b"\n"):
                        warnings.warn(
                            f"{path}:{lineno}: skipped a torn last line (a writer stopped inside it)",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        return
                    error = JsonlError(path, lineno, e.problem, fix)
                    if on_bad is None:
                        raise error from None
                    on_bad(error)
            raw = following


def _parse_line(raw: bytes, parse: Callable[[dict[str, Any]], T], what: str) -> T:
    """One line's record, or _BadLine saying what is wrong with it."""
    try:
        row = _object(raw.decode("utf-8"))
    except ValueError as e:  # bad UTF-8 or JSON, or not an object
        raise _BadLine(
            f"not {what} ({error_text(e)})", isinstance(e, (UnicodeDecodeError, json.JSONDecodeError))
        ) from None
    try:
        return parse(row)
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # the wrong shape
        # a plain ValueError is the parser's own words for the user; others say what failed
        problem = (
            error_text(e, None, with_type=False)
            if type(e) is ValueError and str(e)
            else f"not {what} ({error_text(e)})"
        )
        raise _BadLine(problem, False) from None
