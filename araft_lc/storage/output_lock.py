"""One writer per output: a run holds an exclusive lock on what it writes, for as long as it runs.

The lock is ``fcntl.flock`` on a file beside the output (``OUT.lock``) holding the holder's pid.
The OS releases it when the process dies, ``kill -9`` included, so a stale lock file never
blocks the next run; a second run on the same output fails at once, naming the holder. The
lock file is removed when the run ends (a run that finds it replaced retries on the new one).
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from araft_lc.storage.write_error import writing

__all__ = ["OutputLocked", "output_lock", "lock_path"]


class OutputLocked(OSError):
    """Another run holds the output; the message names its pid and the lock file."""


def lock_path(output: str | Path) -> Path:
    """``OUT.lock`` beside ``output`` (absolute, so that ``--out .`` has a name to lock)."""
    output = Path(os.path.abspath(output))
    return output.with_name(output.name + ".lock")


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def output_lock(output: str | Path) -> Iterator[Path]:
    """Hold ``OUT.lock`` exclusively for the block.

    Raises:
        OutputLocked: another process (or another open of it in this one) holds the lock.
        WriteError: the lock file cannot be created (a read-only or full disk).
    """
    output = Path(output)
    lock = lock_path(output)
    with writing(lock):
        lock.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _holder(fd)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                raise OutputLocked(
                    f"{output} is being written by another run (pid {holder}, lock {lock}): wait for it to "
                    "end, or choose another --out"
                ) from None
            # The holder before us may have removed the file between our open and our lock.
            try:
                if os.path.samestat(os.fstat(fd), os.stat(lock)):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
    try:
        try:  # the pid is for the message of a second run; a full disk may refuse it
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        yield lock
    finally:
        try:
            lock.unlink()  # while still held, so nobody locks a file that is going away
        except OSError:
            pass
        os.close(fd)
