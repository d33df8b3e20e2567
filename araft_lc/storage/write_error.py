"""A failed write to an output: one error that names the file, the cause and the fix.

A full disk (``ENOSPC``, a quota, a file-size limit), a read-only filesystem or an I/O error
is no fault of the model or the question: the run stops at once, is never retried, and never
reports success. Everything that writes an output raises :class:`WriteError` (or lets one of
these ``OSError``s through), and the command line prints it as one line.
"""

from __future__ import annotations

import errno
import os
import resource
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from araft_lc.storage.error_text import error_text

__all__ = ["WriteError", "STORAGE_ERRNOS", "is_write_failure", "writing", "storage_fault"]

# The storage's faults, as a write meets them.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})

_FIX = {
    errno.ENOSPC: "free space (or choose another --out), then run the same command again",
    errno.EDQUOT: "free space under your quota (or choose another --out), then run the same command again",
    errno.EFBIG: "the file reached the size this process may write: raise the limit (ulimit -f) "
    "or choose another --out, then run the same command again",
    errno.EIO: "the disk failed: check it, then run the same command again (or choose another --out)",
    errno.EROFS: "the filesystem is read-only: choose another --out",
    errno.EACCES: "the folder cannot be written: choose another --out",
}


class WriteError(OSError):
    """Writing ``path`` failed for a reason of the storage; the message says which and the fix."""

    def __init__(self, path: str | Path, cause: BaseException) -> None:
        code = getattr(cause, "errno", None) or _sqlite_errno(cause)
        text = error_text(cause, with_type=False)
        reason = getattr(cause, "strerror", None) or text
        fix = _FIX.get(code or 0, "fix the storage, then run the same command again")
        self.message = f"cannot write {path}: {reason}: {fix}"
        super().__init__(self.message)
        self.errno = code
        self.filename = str(path)
        self.path = Path(path)

    def __str__(self) -> str:
        return self.message


# SQLite's words for the storage's faults (its exceptions carry no errno)
_SQLITE = {
    "disk is full": errno.ENOSPC,
    "disk I/O error": errno.EIO,
    "readonly database": errno.EROFS,
    "unable to open database file": errno.EACCES,
}


def _sqlite_errno(e: BaseException) -> int | None:
    if isinstance(e, sqlite3.Error):
        for words, code in _SQLITE.items():
            if words in str(e):
                return code
    return None


# What libraries that write without an OSError say (torch.save's PytorchStreamWriter, safetensors'
# Rust writer): the OS's own message travels in their text.
_LIBRARY_WORDS = (
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
    "Read-only file system",
    "Input/output error",
    "StorageFull",
    "file write failed",
    "failed writing file",
)


def is_write_failure(e: BaseException) -> bool:
    """True for a failed write: a :class:`WriteError`, an ``OSError`` of the storage (full,
    read-only, I/O error), SQLite's word for one, or a library's error (torch, safetensors) that
    carries one in its text or as its cause."""
    seen = 0
    link: Optional[BaseException] = e  # e, then its cause (or context), down the chain
    while link is not None and seen < 8:
        if (
            isinstance(link, WriteError)
            or (isinstance(link, OSError) and link.errno in STORAGE_ERRNOS)
            or _sqlite_errno(link) is not None
        ):
            return True
        if not isinstance(link, OSError) and any(w in str(link) for w in _LIBRARY_WORDS):
            return True
        link, seen = link.__cause__ or link.__context__, seen + 1
    return False


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failed write inside the block into a :class:`WriteError` naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except Exception as e:
        if is_write_failure(e):
            raise WriteError(path, e) from e
        raise


def storage_fault(folder: str | Path, probe_bytes: int = 1 << 20) -> OSError | None:
    """The storage's fault behind a failed write into ``folder``, for libraries that report one
    without the OS's error (Tantivy's writer threads): a file there at the file-size limit
    (``EFBIG``), else whatever writing ``probe_bytes`` there again meets (full, read-only,
    failing); None when the folder takes the write, so the fault was not the storage's."""
    folder = Path(folder)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if (
        limit != resource.RLIM_INFINITY
        and folder.is_dir()
        and any(f.is_file() and f.stat().st_size >= limit for f in folder.iterdir())
    ):
        return OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    probe = folder / ".storage-probe"
    try:
        with open(probe, "wb") as f:
            f.write(bytes(probe_bytes))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return e if e.errno in STORAGE_ERRNOS else None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return None
