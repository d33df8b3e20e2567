"""Files that are whole or absent: written beside their final name, then renamed into place.

For reports, summaries and configs that a kill at any moment must not leave half-written.
(Append-only records go through ``jsonl_sink``; indexes and merged models rename whole folders
or databases the same way.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from araft_lc.redact import redact

__all__ = ["replace_atomically", "write_text_atomically"]


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path`` (same suffix, so writers that go
    by it still work), then rename it over ``path``; on failure remove the temporary file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` (secrets redacted, ``araft_lc.redact``) whole or not at all."""
    text = redact(text)
    replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
