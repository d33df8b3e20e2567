"""Files that are whole or absent: written beside their final name, fsynced, then renamed.

For reports, summaries, configs and converted records, which a kill or a full disk at any moment
must not leave half-written (SQLite's and git's discipline: write aside, fsync, rename, fsync the
folder). The temporary name is unique, so two writers of one file never share it: each rename
puts a whole file in place. (Append-only records go through ``jsonl_sink``; indexes are built
aside, file or folder, by ``built_aside``; merged models rename whole folders the same way.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from araft_lc.storage.redact import redact
from araft_lc.storage.write_error import writing

__all__ = ["replace_atomically", "write_text_atomically", "open_atomically", "built_aside", "fsync_dir"]


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new name in folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _aside(path: Path) -> Iterator[Path]:
    """A unique temporary path beside ``path`` (same suffix, so writers that go by it still
    work); once the block has written it: fsync, rename over ``path``, fsync the folder. On any
    failure the temporary file is removed and ``path`` left as it was."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
        os.close(fd)
        tmp = Path(name)
        try:
            os.chmod(tmp, 0o644)
            yield tmp
            _fsync_file(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)


def replace_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path`` (what it returns is ignored), then
    put it whole at ``path`` (see ``_aside``).

    Raises:
        WriteError: the disk is full, read-only or failing (naming ``path``).
    """
    with _aside(Path(path)) as tmp:
        write(tmp)


@contextmanager
def open_atomically(path: str | Path) -> Iterator[IO[str]]:
    """A text file to write; leaving the block without an error puts it whole at ``path``
    (fsynced, renamed); an error removes it and leaves ``path`` as it was.

    Raises:
        WriteError: the disk is full, read-only or failing (naming ``path``).
    """
    with _aside(Path(path)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` (secrets redacted, ``araft_lc.storage.redact``) whole or not at all."""
    text = redact(text)
    replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            _fsync_tree(child)
        fsync_dir(path)
    else:
        _fsync_file(path)


@contextmanager
def built_aside(path: str | Path) -> Iterator[Path]:
    """``path + '.tmp'`` (removed first) to build a file or a folder in. Leaving the block without
    an error makes it durable (every file fsynced) and renames it to ``path``, replacing what was
    there; an error removes it and leaves ``path`` as it was. For outputs too big to write twice
    (indexes), whose one writer a lock guarantees (``output_lock``).

    Raises:
        WriteError: the disk is full, read-only or failing (naming ``path``).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with writing(path):
        _remove(tmp)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield tmp
            _fsync_tree(tmp)
            # A folder cannot be renamed over a file or a non-empty folder, nor a file over a folder.
            if path.exists() and (path.is_dir() or tmp.is_dir()):
                _remove(path)
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
        fsync_dir(path.parent)
