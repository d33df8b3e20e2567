"""The lean install (``araft[llamacpp]``: no torch, transformers or peft) runs the shipped agent:
the README's ten lines of Python and ``araft ask`` run here with those packages made unimportable,
as in a venv that never had them. (``benchmarks/install_bench.py`` installs the wheel into real
fresh venvs beside other LangChain versions; that needs PyPI, so it is a benchmark, not a test.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="the llama.cpp backend is the llamacpp extra: pip install 'araft[llamacpp]'")

from benchmarks.install_bench import readme_python

ROOT = Path(__file__).resolve().parents[2]
# The shipped adapter's greedy answer to the README's question, pinned as it runs (and right: the
# README says how the question was chosen).
ANSWER = "1933"
# A venv without the torch extra: importing any of these fails, as it would there.
WITHOUT_TORCH = """
import importlib.abc, importlib.util, sys
_ABSENT = {"torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers"}
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, _Absent())
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: (
    None if name.partition(".")[0] in _ABSENT else _find_spec(name, package))
"""


def _run(code: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH + code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_the_readme_python_answers_without_torch(smollm2: tuple[str, str], data_dir: Path) -> None:
    code = readme_python().replace("../shared/data/hotpotqa", str(data_dir))
    done = _run(code + "\nassert 'torch' not in sys.modules and 'transformers' not in sys.modules", data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith(f"{ANSWER} answered ["), done.stdout[-2000:]


def test_araft_ask_and_info_run_without_torch(smollm2: tuple[str, str], data_dir: Path) -> None:
    corpus = str(data_dir / "wiki_corpus.jsonl.gz")
    done = _run(
        f"import araft; sys.exit(araft.main(['ask', '--verbose', '--corpus', {corpus!r}, "
        "'Fodder on My Wings is an album by a singer/pianist/songwriter born in which year ?']))",
        data_dir,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Answer: {ANSWER}" in done.stdout and "engine: llama.cpp (" in done.stderr
    torch = _run("import araft; sys.exit(araft.main(['info', '--backend', 'torch']))", data_dir)
    assert torch.returncode == 2 and torch.stderr.count("\n") == 1 and "araft[torch]" in torch.stderr
