"""A real ``langgraph dev`` server on 127.0.0.1 serving our ``langgraph.json``, for the tests that
drive it with its own client, ``langgraph_sdk``.

It runs without ``--allow-blocking`` (any blocking call on its event loop fails the run), from the
repository root (``langgraph.json`` paths are relative to the working directory; its in-memory
store goes to the ignored ``.langgraph_api/``), in its own process group, and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest
from helpers import ROOT

from benchmarks.common import stop_process_group

STARTUP_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(NamedTuple):
    url: str
    process: subprocess.Popen  # the server's process, leader of its own process group


def group_memory_kb(leader: int) -> tuple[int, int]:
    """(resident now, peak resident) in KiB, summed over the process group ``leader`` leads."""
    now = peak = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != leader:  # field 5: the group
                continue
            status = dict(
                line.split(":", 1) for line in (stat.parent / "status").read_text().splitlines() if ":" in line
            )
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
        now += int(status.get("VmRSS", "0 kB").split()[0])
        peak += int(status.get("VmHWM", "0 kB").split()[0])
    return now, peak


@contextlib.contextmanager
def langgraph_dev(env: dict[str, str], log_path: Path, *args: str) -> Iterator[Server]:
    """Start ``langgraph dev`` (with ``args`` added) and ``env`` added to this process's
    environment; yield it once ``/ok`` answers; stop it on exit. Its output goes to ``log_path``."""
    port = free_port()
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1", **env}
    cli = Path(sys.executable).with_name("langgraph")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                str(cli),
                "dev",
                "--config",
                str(ROOT / "langgraph.json"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-browser",
                "--no-reload",
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                try:
                    urllib.request.urlopen(url + "/ok", timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"langgraph dev did not start:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.5)
            yield Server(url, proc)
        finally:
            stop_process_group(proc, timeout=20)
