"""araft_lc.storage.jsonl_sink: a failed append leaves only whole lines and stops the sink."""

import errno
import json
import os

import pytest

from araft_lc.storage.jsonl_sink import JsonlSink, read_ids
from araft_lc.storage.write_error import WriteError


def _lines(path):
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line)["question_id"] for line in text.splitlines()]


def test_a_failing_fsync_takes_the_line_back_and_refuses_more(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    sink = JsonlSink(path)
    sink.write({"question_id": "a"})

    def eio(fd):  # the disk at the edge of the world: an I/O error on flush
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", eio)
        with pytest.raises(WriteError, match=f"cannot write {path}: Input/output error"):
            sink.write({"question_id": "b"})
    assert _lines(path) == ["a"]
    with pytest.raises(WriteError):  # nothing more goes after a failure, even once the disk answers
        sink.write({"question_id": "c"})
    sink.close()
    with JsonlSink(path) as again:  # the next run appends after the last whole line
        again.write({"question_id": "c"})
    assert _lines(path) == ["a", "c"]


def test_a_short_write_then_a_full_disk_leaves_no_torn_line(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    sink = JsonlSink(path)
    sink.write({"question_id": "a"})
    real_write, calls = os.write, []

    def filling_up(fd, data):  # half the line fits, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", filling_up)
    with pytest.raises(WriteError, match="No space left on device: free space"):
        sink.write({"question_id": "b", "text": "x" * 1000})
    monkeypatch.undo()
    assert len(calls) == 2  # the rest of the line was tried, not dropped
    assert _lines(path) == ["a"] and read_ids(path) == {"a"}


def test_dev_full_is_one_write_error():
    with JsonlSink("/dev/full") as sink, pytest.raises(WriteError, match="cannot write /dev/full: No space left"):
        sink.write({"question_id": "a"})


def test_a_folder_is_no_sink(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        JsonlSink(tmp_path)
