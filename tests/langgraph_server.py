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
from typing import Iterator

import pytest

from benchmarks.common import stop_process_group
from conftest import ROOT

STARTUP_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def langgraph_dev(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Start ``langgraph dev`` with ``env`` added to this process's environment; yield its URL
    once ``/ok`` answers; stop it on exit. Its output goes to ``log_path``."""
    port = free_port()
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1", **env}
    cli = Path(sys.executable).with_name("langgraph")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(cli), "dev", "--config", str(ROOT / "langgraph.json"), "--host", "127.0.0.1", "--port", str(port),
             "--no-browser", "--no-reload"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
            yield url
        finally:
            stop_process_group(proc, timeout=20)
