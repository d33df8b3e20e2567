"""araft_lc.storage.atomic_file: a failed write leaves the old file and no temporary beside it."""

import errno
import os

import pytest

from araft_lc.storage.atomic_file import open_atomically, write_text_atomically
from araft_lc.storage.write_error import WriteError


def _eio(fd):  # the disk at the edge of the world: an I/O error on flush
    raise OSError(errno.EIO, os.strerror(errno.EIO))


@pytest.mark.parametrize("how", ["text", "stream"])
def test_a_failed_write_keeps_the_old_file_whole(how, tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old\n")
    monkeypatch.setattr(os, "fsync", _eio)
    with pytest.raises(WriteError, match=f"cannot write {path}: Input/output error"):
        if how == "text":
            write_text_atomically(path, "new\n")
        else:
            with open_atomically(path) as f:
                f.write("new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_an_error_while_writing_leaves_nothing(tmp_path):
    path = tmp_path / "sft.jsonl"
    with pytest.raises(ValueError, match="bad record"):
        with open_atomically(path) as f:
            f.write("half\n")
            raise ValueError("bad record")
    assert list(tmp_path.iterdir()) == []
    with open_atomically(path) as f:
        f.write("whole\n")
    assert path.read_text() == "whole\n" and oct(path.stat().st_mode & 0o777) == "0o644"
