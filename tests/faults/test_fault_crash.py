"""Crash safety: ``kill -9`` at random points of ``araft corpus build``, ``generate``, ``eval``
and ``train``; started again with the same arguments, each finishes with exactly what a clean
run gives: the same record ids once each, an index that passes ``PRAGMA integrity_check``,
reports whole or absent, training resumed from its last checkpoint."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from helpers import CPU_TRAINING, golden_sft_records

from evals.generate import rejects_path
from finetune.outputs import last_checkpoint

KILLS = 3  # kills per command, each at a random point, before the run that finishes
RNG = random.Random(7)


def araft(*argv: str) -> list[str]:
    return [sys.executable, "-m", "araft", *map(str, argv)]


def run_until(argv: list[str], when: Callable[[], bool], timeout: float = 300) -> bool:
    """Run ``argv``; SIGKILL it as soon as ``when()`` holds. True if it was killed, False if it
    finished first (it must then have succeeded)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.monotonic() + timeout
    while proc.poll() is None:
        if when():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        assert time.monotonic() < end, f"{argv} ran past {timeout} s"
        time.sleep(0.002)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    return False


def kill_point(clean_size: int) -> int:
    """A random size the file reaches mid-run: within its first 90%, so the kill lands before the
    run's last writes (a kill the poll would miss leaves a finished run, which is not the test)."""
    return RNG.randint(1, max(1, int(0.9 * clean_size)))


def size_at_least(path: Path, n: int) -> Callable[[], bool]:
    def reached() -> bool:
        try:  # not exists() then stat(): the run may rename the file between the two
            return path.stat().st_size >= n
        except FileNotFoundError:
            return False

    return reached


def crash_then_finish(argv: list[str], watch: Path, clean_size: int, ledger, name: str) -> int:
    """Kill ``argv`` KILLS times when ``watch`` reaches a random size below ``clean_size``, then
    let it finish; the number of kills that landed mid-run."""
    landed = 0
    for _ in range(KILLS):
        landed += run_until(argv, size_at_least(watch, kill_point(clean_size)))
    assert not run_until(argv, lambda: False)
    ledger.add(f"kill -9: {name}", faults=landed, runs=landed + 1, completed=1)
    return landed


def jsonl_keys(path: Path, key: Callable[[dict], str] = lambda r: r["question_id"]) -> list[str]:
    if not path.exists():
        return []
    return [key(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def test_corpus_build_killed_leaves_no_index_then_builds_a_whole_one(tmp_path, ledger):
    from helpers import MINI_CORPUS

    source = tmp_path / "big.jsonl"
    base = Path(MINI_CORPUS).read_text().splitlines()
    with source.open("w") as f:  # 60,000 paragraphs: long enough to be killed mid-build
        for i in range(60_000):
            row = json.loads(base[i % len(base)])
            row["title"] = f"{row['title']} ({i})"
            f.write(json.dumps(row) + "\n")
    clean = tmp_path / "clean.sqlite"
    assert not run_until(araft("corpus", "build", source, "--out", clean), lambda: False)
    out = tmp_path / "index.sqlite"
    argv = araft("corpus", "build", source, "--out", out)
    tmp = out.with_name(out.name + ".tmp")
    landed = 0
    for _ in range(KILLS):
        killed = run_until(argv, size_at_least(tmp, kill_point(clean.stat().st_size)))
        if not killed:  # it finished first: the index below must still be whole
            break
        landed += 1
        assert not out.exists()  # never a half-built index under the real name
    if not out.exists():
        assert not run_until(argv, lambda: False)
    ledger.add("kill -9: corpus build", faults=landed, runs=landed + 1, completed=1)
    con = sqlite3.connect(out)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    pages = sorted(t for (t,) in con.execute("SELECT title FROM pages"))
    clean_pages = sorted(t for (t,) in sqlite3.connect(clean).execute("SELECT title FROM pages"))
    ledger.add("kill -9: corpus build", lost=len(set(clean_pages) - set(pages)))
    assert pages == clean_pages
    assert landed >= 1


def test_generate_killed_resumes_to_the_clean_records(data_dir, corpus_index, tmp_path, ledger):
    questions = data_dir / "dev_distractor_b300.jsonl"
    common = ["--questions", questions, "--teacher", "oracle", "--corpus", corpus_index, "--prompt", "zeroshot"]
    clean = tmp_path / "clean.jsonl"
    assert not run_until(araft("generate", *common, "--out", clean), lambda: False)
    out = tmp_path / "traj.jsonl"
    landed = crash_then_finish(araft("generate", *common, "--out", out), out, clean.stat().st_size, ledger, "generate")
    for got, want in ((out, clean), (rejects_path(out), rejects_path(clean))):
        keys = jsonl_keys(got)
        ledger.add("kill -9: generate", lost=len(set(jsonl_keys(want)) - set(keys)))
        assert len(keys) == len(set(keys))  # none doubled
        assert sorted(keys) == sorted(jsonl_keys(want))  # none lost
    assert landed >= 1


def test_eval_killed_resumes_and_its_report_is_whole(data_dir, corpus_index, tmp_path, ledger):
    from evals.runner import run_key

    common = [
        "--questions",
        data_dir / "dev_distractor_a500.jsonl",
        "--model",
        "oracle",
        "--corpus",
        corpus_index,
        "--limit",
        "200",
        "--prompt",
        "zeroshot",
    ]
    clean = tmp_path / "clean"
    assert not run_until(araft("eval", *common, "--out", clean), lambda: False)
    out = tmp_path / "run"
    watch = out / "trajectories.jsonl"
    landed = 0
    for _ in range(KILLS):
        landed += run_until(
            araft("eval", *common, "--out", out),
            size_at_least(watch, kill_point((clean / "trajectories.jsonl").stat().st_size)),
        )
        for name in ("report.json", "report.md"):  # whole or absent, never torn
            if (out / name).exists():
                assert (out / name).read_text().strip()
        if (out / "report.json").exists():
            json.loads((out / "report.json").read_text())
    assert not run_until(araft("eval", *common, "--out", out), lambda: False)
    ledger.add("kill -9: eval", faults=landed, runs=landed + 1, completed=1)
    keys = jsonl_keys(watch, run_key)
    ledger.add("kill -9: eval", lost=len(set(jsonl_keys(clean / "trajectories.jsonl", run_key)) - set(keys)))
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(jsonl_keys(clean / "trajectories.jsonl", run_key))
    report, want = json.loads((out / "report.json").read_text()), json.loads((clean / "report.json").read_text())
    assert report["levels"]["all"]["f1"] == want["levels"]["all"]["f1"]
    assert landed >= 1


def test_train_killed_resumes_from_its_last_checkpoint(tiny_llama, tmp_path, ledger):

    data = tmp_path / "sft.jsonl"
    golden_sft_records(data)
    out = tmp_path / "adapter"
    argv = araft(
        "train",
        "sft",
        "--data",
        data,
        "--output_dir",
        out,
        "--model",
        tiny_llama,
        *CPU_TRAINING,
        "--gradient_accumulation_steps",
        "1",
        "--warmup_ratio",
        "0",
        "--logging_steps",
        "1",
        "--max_steps",
        "8",
        "--save_steps",
        "2",
    )
    # Killed as checkpoint-2 starts to be written (torn), then just after checkpoint-4 is whole,
    # then as checkpoint-6 starts: the finishing run must resume from checkpoint-4.
    landed = run_until(argv, lambda: (out / "checkpoint-2").is_dir())
    landed += run_until([*argv, "--resume"], lambda: last_checkpoint(out) == out / "checkpoint-4")
    landed += run_until([*argv, "--resume"], lambda: (out / "checkpoint-6").is_dir())
    assert not run_until([*argv, "--resume"], lambda: False, timeout=600)
    ledger.add("kill -9: train", faults=landed, runs=landed + 1, completed=1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 8
    assert (out / "adapter_model.safetensors").is_file()
    assert landed == 3 and summary["resumed_from"].endswith("checkpoint-4")
