"""Whether llama.cpp can run a GGUF on this CPU, asked once of a child process and remembered.

A native fault in llama.cpp kills the whole process, with no exception to catch: on CPUs that
advertise AMX (Intel Sapphire Rapids and later), llama.cpp 0.3.36's AMX matrix path faults at its
first decode (``ldtilecfg`` in ``ggml_backend_amx_mul_mat``, ggml-org/llama.cpp#26954), and a
wheel built natively on a newer CPU dies with SIGILL on an older one. So before the chat model
picks llama.cpp by itself, a child process loads the weights and decodes a few tokens with the
parameters the engine will use; the answer is kept in the cache (``$ARAFT_CACHE_DIR/llama-cpp-check``)
under the llama-cpp-python build, the CPU's flags and the weights file, so it is asked once.

The parameters themselves avoid the known fault: where the CPU advertises AMX, llama.cpp's extra
buffer types (the AMX and repacked weight layouts) are switched off
(``araft_lc.runtime.llama_cpp.lib.model_params``).

    python -m araft_lc.runtime.llama_cpp.check WEIGHTS.gguf   # the child: exit 0 and "ok", or dies
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from araft_lc.runtime.llama_cpp import lib as llama_cpp_lib
from araft_lc.runtime.llama_cpp.lib import model_params, start_llama_cpp
from araft_lc.storage.cache_dir import cache_dir

__all__ = ["CheckResult", "check_llama_cpp", "PROBE", "TIMEOUT"]

# The child's command line (the weights' path is added); tests put a child that crashes here.
PROBE = [sys.executable, "-m", "araft_lc.runtime.llama_cpp.check"]
TIMEOUT = 300.0  # seconds the child may take (it loads the weights and decodes a few tokens)
_FORMAT = 1  # bump when the check itself changes, so earlier answers are asked again
# Signals of a native fault: the answers remembered besides success (a timeout or a kill is asked again).
_FAULTS = {signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE}


@dataclass(frozen=True)
class CheckResult:
    """The answer: whether the child decoded, why not, what it cost, and whether it was remembered."""

    ok: bool
    reason: str  # "" when ok
    seconds: float  # what the child took when it was asked
    cached: bool = False


def _build() -> dict[str, Any]:
    """What identifies the installed llama-cpp-python build: its version and its libraries' sizes
    and times (a rebuild with other flags changes them)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return {}
    package = Path(spec.origin).parent
    version = ""
    init = package / "__init__.py"
    for line in init.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("__version__"):
            version = line.partition("=")[2].strip().strip("\"'")
    libs = sorted(p for p in (package / "lib").glob("*") if p.is_file()) if (package / "lib").is_dir() else []
    return {"version": version, "libs": [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in libs]}


def _key(weights: Path) -> str:
    stat = weights.stat()
    identity = {
        "format": _FORMAT,
        "build": _build(),
        "cpu": sorted(llama_cpp_lib.cpu_flags()),
        "weights": [str(weights.resolve()), stat.st_size, int(stat.st_mtime)],
        "probe": PROBE[1:],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def _why(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"llama.cpp's check process died with {name}"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    return f"llama.cpp's check process exited with {returncode}" + (f" ({last[:200]})" if last else "")


def check_llama_cpp(weights: str | Path) -> CheckResult:
    """Whether llama.cpp loads ``weights`` and decodes on this CPU with ``model_params``: asked of a
    child process the first time, then read from the cache."""
    from araft_lc.storage.atomic_file import write_text_atomically

    path = Path(weights)
    answer = cache_dir("llama-cpp-check") / f"{_key(path)}.json"
    try:
        return CheckResult(**{**json.loads(answer.read_text(encoding="utf-8")), "cached": True})
    except (OSError, ValueError, TypeError):
        pass  # not asked yet, or an unreadable answer: ask again
    start = time.perf_counter()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    try:
        done = subprocess.run(
            [*PROBE, str(path)], capture_output=True, text=True, timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL
        )
        ok = done.returncode == 0 and done.stdout.strip().endswith("ok")
        reason = "" if ok else _why(done.returncode, done.stderr)
        # a fault is the CPU's and the build's, so it is remembered; a kill from outside is not
        remember = ok or -done.returncode in _FAULTS
    except subprocess.TimeoutExpired:
        ok, reason, remember = False, f"llama.cpp's check process did not finish in {TIMEOUT:.0f} s", False
    result = CheckResult(ok, reason, round(time.perf_counter() - start, 3))
    if remember:
        try:
            write_text_atomically(answer, json.dumps({k: v for k, v in asdict(result).items() if k != "cached"}))
        except OSError:
            pass  # a cache that cannot be written: asked again next time
    return result


def _probe(weights: str) -> None:
    """Load ``weights`` as the engine does and decode: a prompt of 16 tokens, then 4 more, one by one."""
    llama_cpp = start_llama_cpp()
    model = llama_cpp.llama_model_load_from_file(weights.encode(), model_params(llama_cpp))
    if not model:
        raise SystemExit(f"llama.cpp could not load {weights}")
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch, params.n_threads, params.n_threads_batch = 64, 32, 32, 1, 1
    ctx = llama_cpp.llama_init_from_model(model, params)
    vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    batch = llama_cpp.llama_batch_init(32, 0, 1)
    tokens = [(7 * i + 11) % vocab for i in range(16)]
    position = 0
    for step in range(5):
        for i, token in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position + i, 1
            batch.seq_id[i][0], batch.logits[i] = 0, i == len(tokens) - 1
        batch.n_tokens = len(tokens)
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise SystemExit(f"llama_decode failed at step {step}")
        position += len(tokens)
        logits = llama_cpp.llama_get_logits_ith(ctx, len(tokens) - 1)
        tokens = [max(range(vocab), key=lambda t: logits[t])]
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m araft_lc.runtime.llama_cpp.check WEIGHTS.gguf")
    _probe(sys.argv[1])
