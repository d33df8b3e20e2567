"""The benchmark suite keeps working: ``python -m benchmarks --smoke`` runs every benchmark at a
tiny size and prints its table. Its figures are not checked: benchmarks, not timed tests."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT, hotpotqa_dir


def test_every_benchmark_runs_at_smoke_size():
    env = {**os.environ, "ARAFT_DATA_DIR": str(hotpotqa_dir())}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    assert table.startswith("figure")
    assert "LangGraph overhead per agent step" in table and "synthetic index, 2,000 pages" in table
    assert "decode step: a token of a full batch against one alone" in table
    if (hotpotqa_dir() / "wiki_corpus.jsonl.gz").is_file():
        for figure in ("sample index", "prefix cache: identical outputs", "batching (padded): identical outputs",
                       "batching (continuous): identical outputs", "static decode: identical outputs"):
            assert figure in table
        # greedy outputs are the same with and without the cache, batched or not, static or dynamic
        identical = [line for line in table.splitlines() if "identical outputs" in line]
        assert len(identical) == 4 and all(" True " in line for line in identical)
    else:
        assert "skipped, the HotpotQA sample is not at" in done.stderr


def test_unknown_benchmark_is_named():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "unknown benchmark 'nope'" in done.stderr
