"""araft_lc.storage.output_lock: one holder at a time, named; freed by the OS when the holder dies."""

import os
import signal
import subprocess
import sys

import pytest
from helpers import ROOT

from araft_lc.storage.output_lock import OutputLocked, lock_path, output_lock


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "traj.jsonl"
    with output_lock(out):
        assert lock_path(out).read_text().strip() == str(os.getpid())
        with pytest.raises(OutputLocked, match=rf"{out} is being written by another run \(pid {os.getpid()}, lock "):
            with output_lock(out):
                pass
    assert not lock_path(out).exists()  # removed on release
    with output_lock(out):  # and free again
        pass


def test_a_killed_holder_frees_the_output(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from araft_lc.storage.output_lock import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(300)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLocked, match=f"pid {holder.pid}"):
            with output_lock(out):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(out).exists()  # left behind by kill -9, but no longer held
    with output_lock(out):
        pass
