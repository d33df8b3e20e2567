"""Storage faults: a full disk, a read-only one, two runs on one output, repeated question ids.

Every command that writes (generate, eval, convert, corpus build, train, report) is run on a disk
too small for what it writes. It must stop with one line (``araft: error: cannot write FILE:
...``) and a non-zero exit, leave no torn record and no partial file at the final path, and the
same command, once there is room, must finish with every question exactly once.

The small disk is a real tmpfs where the machine lets the test mount one (root, as CI runs);
elsewhere it is the kernel's per-process file-size limit (RLIMIT_FSIZE): a write past N bytes
fails with EFBIG, the same fault injected without mounting. One test always uses the limit, so
both ways are exercised wherever mounting works.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

import pytest
from helpers import CPU_TRAINING, ROOT, golden_sft_records

from araft_lc.storage.output_lock import lock_path, output_lock
from evals.generate import rejects_path
from finetune.outputs import last_checkpoint

GOLDEN = ROOT / "tests" / "data" / "golden"


def araft(*argv: object) -> list[str]:
    return [sys.executable, "-m", "araft", *map(str, argv)]


@lru_cache(maxsize=1)
def can_mount() -> Optional[str]:
    """None if a tmpfs can be mounted here, else why not (ARAFT_TEST_NO_MOUNT=1 tries the fallback)."""
    if os.environ.get("ARAFT_TEST_NO_MOUNT"):
        return "ARAFT_TEST_NO_MOUNT is set"
    if os.geteuid() != 0:
        return "not root"
    probe = Path(f"/tmp/araft-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
        if done.returncode != 0:
            return f"mount refused: {done.stderr.decode().strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


class SmallDisk:
    """A folder with room for ``size`` bytes: a tmpfs of that size, or (``fsize``) any folder
    with every command run under RLIMIT_FSIZE = ``size``. ``make_room`` gives it space back."""

    def __init__(self, path: Path, size: int, mode: str) -> None:
        self.dir, self.size, self.mode, self.full = path, size, mode, True
        path.mkdir(parents=True)
        if mode == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)

    def run(self, *argv: object, timeout: float = 300) -> subprocess.CompletedProcess:
        limit = self.size if self.mode == "fsize" and self.full else None

        def limit_file_size() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

        return subprocess.run(
            araft(*argv), capture_output=True, text=True, timeout=timeout, preexec_fn=limit_file_size if limit else None
        )

    def make_room(self) -> None:
        if self.mode == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=64m", str(self.dir)], check=True)
        self.full = False

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.dir)], check=True)

    def close(self) -> None:
        if self.mode == "tmpfs":
            subprocess.run(["umount", "-l", str(self.dir)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    disks: list[SmallDisk] = []

    def make(size: int, mode: Optional[str] = None) -> SmallDisk:
        disk = SmallDisk(tmp_path / f"disk{len(disks)}", size, mode or ("tmpfs" if can_mount() is None else "fsize"))
        disks.append(disk)
        return disk

    yield make
    for disk in disks:
        disk.close()


def one_error_line(result: subprocess.CompletedProcess, *words: object) -> str:
    """The run failed as a machine fault does (exit 1: a full or read-only disk, a held output)
    with exactly one ``araft: error:`` line holding ``words``, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [
        line[line.index("araft: error:") :] for line in re.split(r"[\r\n]", result.stderr) if "araft: error:" in line
    ]
    assert len(lines) == 1, result.stderr[-2000:]
    for word in words:
        assert str(word) in lines[0], lines[0]
    return lines[0]


def whole_keys(path: Path, key=lambda r: r["question_id"]) -> list[str]:
    """The keys of a JSONL file whose every line is whole (no torn tail)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path} ends in a torn line"
    return [key(json.loads(line)) for line in text.splitlines()]


def only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def exactly_once(got: list[str], want: set[str], ledger, row: str, first: subprocess.CompletedProcess) -> None:
    ledger.add(row, faults=1, runs=2, completed=1, lost=len(want - set(got)), false_ok=int(first.returncode == 0))
    assert len(got) == len(set(got)), "a record was written twice"
    assert set(got) == want


# -- a full disk, command by command ---------------------------------------------------------------


def _generate_argv(data_dir, corpus_index, out) -> list[object]:
    return [
        "generate",
        "--questions",
        data_dir / "dev_distractor_b300.jsonl",
        "--teacher",
        "oracle",
        "--corpus",
        corpus_index,
        "--prompt",
        "zeroshot",
        "--out",
        out,
    ]


@pytest.mark.parametrize("mode", [None, "fsize"], ids=["small-disk", "file-size-limit"])
def test_generate_on_a_full_disk_stops_then_resumes_every_question_once(
    data_dir, corpus_index, small_disk, ledger, mode
):
    from evals.hotpotqa import load_questions

    want = {q.id for q in load_questions(data_dir / "dev_distractor_b300.jsonl")}
    disk = small_disk(300_000, mode)
    out = disk.dir / "traj.jsonl"
    first = disk.run(*_generate_argv(data_dir, corpus_index, out))
    one_error_line(first, f"cannot write {out}")
    assert "tried" not in first.stdout  # no summary: nothing claims success
    before = whole_keys(out)
    assert 0 < len(before) < len(want)
    assert not lock_path(out).exists()
    disk.make_room()
    second = disk.run(*_generate_argv(data_dir, corpus_index, out))
    assert second.returncode == 0, second.stderr[-2000:]
    after = whole_keys(out)
    assert after[: len(before)] == before  # what was written before the fault is kept as it was
    exactly_once(after + whole_keys(rejects_path(out)), want, ledger, "full disk: generate", first)


def test_eval_on_a_full_disk_writes_no_report_then_finishes(data_dir, corpus_index, small_disk, ledger):
    from evals.hotpotqa import load_questions, sample_questions
    from evals.runner import run_key

    pool = list(load_questions(data_dir / "dev_distractor_b300.jsonl"))
    want = {f"{q.id}#0" for q in sample_questions(pool, limit=100, seed=0)}
    disk = small_disk(300_000)
    out = disk.dir / "run"
    argv = [
        "eval",
        "--questions",
        data_dir / "dev_distractor_b300.jsonl",
        "--model",
        "oracle",
        "--corpus",
        corpus_index,
        "--limit",
        "100",
        "--prompt",
        "zeroshot",
        "--out",
        out,
    ]
    first = disk.run(*argv)
    one_error_line(first, f"cannot write {out / 'trajectories.jsonl'}")
    assert only_files(out) == ["settings.yaml", "trajectories.jsonl"]  # no report of a run that did not finish
    assert 0 < len(whole_keys(out / "trajectories.jsonl", run_key)) < 100
    disk.make_room()
    second = disk.run(*argv)
    assert second.returncode == 0, second.stderr[-2000:]
    exactly_once(whole_keys(out / "trajectories.jsonl", run_key), want, ledger, "full disk: eval", first)
    assert json.loads((out / "report.json").read_text())["levels"]["all"]["f1"]["n"] == 100


def test_convert_on_a_full_disk_leaves_nothing_at_the_final_path(small_disk, ledger):
    disk = small_disk(8192)
    out = disk.dir / "dpo.jsonl"
    argv = [
        "convert",
        "dpo",
        GOLDEN / "trajectories.jsonl",
        "--out",
        out,
        "--prompt-style",
        "zeroshot",
        "--rejects",
        GOLDEN / "rejects.jsonl",
        "--kinds",
        "repeat_previous,answer_before_search,malformed_action,failed_run,wrong_answer",
    ]  # the golden file's arguments (tests/unit/test_records.py)
    first = disk.run(*argv)
    one_error_line(first, f"cannot write {out}")
    assert only_files(disk.dir) == []  # neither a partial file nor its temporary
    disk.make_room()
    assert disk.run(*argv).returncode == 0
    want, got = (GOLDEN / "expected_dpo.jsonl").read_text().splitlines(), out.read_text().splitlines()
    ledger.add(
        "full disk: convert",
        faults=1,
        runs=2,
        completed=1,
        lost=len(set(want) - set(got)),
        false_ok=int(first.returncode == 0),
    )
    assert got == want


@pytest.mark.parametrize("engine", ["fts5", "tantivy"])
def test_corpus_build_on_a_full_disk_leaves_no_index_then_builds_one(data_dir, small_disk, ledger, engine):
    from araft_lc.wiki.index_engines import index_name, open_index

    disk = small_disk(300_000)
    out = disk.dir / index_name("wiki", engine)
    argv = ["corpus", "build", data_dir / "wiki_corpus.jsonl.gz", "--out", out, "--engine", engine]
    first = disk.run(*argv)
    one_error_line(first, f"cannot write {out}")
    assert first.returncode == 1  # the machine's fault, not the user's
    assert only_files(disk.dir) == []  # no index, no .tmp, no lock
    disk.make_room()
    second = disk.run(*argv)
    assert second.returncode == 0, second.stderr[-2000:]
    if engine == "fts5":
        assert sqlite3.connect(out).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    pages = len(open_index(out))
    ledger.add(
        "full disk: corpus build",
        faults=1,
        runs=2,
        completed=1,
        lost=11_736 - pages,
        false_ok=int(first.returncode == 0),
    )
    assert pages == 11_736 and open_index(out).title_match("Harvey Pekar") is not None


def test_report_on_a_full_disk_leaves_nothing_then_writes(data_dir, corpus_index, small_disk, tmp_path, ledger):
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        done = subprocess.run(
            araft(
                "eval",
                "--questions",
                data_dir / "dev_distractor_b300.jsonl",
                "--model",
                "oracle",
                "--corpus",
                corpus_index,
                "--limit",
                "10",
                "--seed",
                seed,
                "--prompt",
                "zeroshot",
                "--out",
                run,
            ),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(run)
    disk = small_disk(8192)
    out = disk.dir / "compare.md"
    first = disk.run("report", *runs, "--out", out)
    one_error_line(first, "cannot write", disk.dir)
    assert first.stdout == ""  # the table is printed only once it is written
    assert only_files(disk.dir) == []
    disk.make_room()
    second = disk.run("report", *runs, "--out", out)
    assert second.returncode == 0, second.stderr[-2000:]
    assert only_files(disk.dir) == ["compare.md", "compare.png"]
    assert out.read_text() == second.stdout
    ledger.add("full disk: report", faults=1, runs=2, completed=1, false_ok=int(first.returncode == 0))


def test_train_on_a_full_disk_keeps_its_last_whole_checkpoint_and_resumes(tiny_llama, small_disk, tmp_path, ledger):
    # The small disk holds one checkpoint (~0.5 MB) but not two: the run stops while saving
    # checkpoint-4 (the file-size limit: on its 285 KB optimizer state).
    data = tmp_path / "sft.jsonl"
    done = subprocess.run(
        araft(
            "convert",
            "sft",
            GOLDEN / "trajectories.jsonl",
            "--out",
            data,
            "--prompt-style",
            "zeroshot_turns",
            "--granularity",
            "trajectory",
        ),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    disk = small_disk(800_000 if can_mount() is None else 200_000)
    out = disk.dir / "adapter"
    argv = [
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
    ]
    first = disk.run(*argv)
    one_error_line(first, f"cannot write {out}")
    whole = last_checkpoint(out)
    # no torn checkpoint, no adapter at the final path, no summary of a run that did not finish
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ([whole.name] if whole else [])
    assert not (out / "adapter_model.safetensors").exists() and not (out / "summary.json").exists()
    for line in (out / "log.jsonl").read_text().splitlines():
        json.loads(line)
    disk.make_room()
    second = disk.run(*argv, "--resume")
    assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    ledger.add(
        "full disk: train",
        faults=1,
        runs=2,
        completed=1,
        lost=8 - summary["steps"],
        false_ok=int(first.returncode == 0),
    )
    assert summary["steps"] == 8
    assert (out / "adapter_model.safetensors").is_file()
    assert not any(p.name.startswith(".") for p in out.iterdir())


def test_train_log_on_a_full_disk_stops_training(tiny_llama, tmp_path, capsys, ledger):
    """The loss log is written from a Trainer callback: a failed append must stop the run."""
    from araft import main

    data = tmp_path / "sft.jsonl"
    golden_sft_records(data)
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "log.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    code = main(
        [
            "train",
            "sft",
            "--data",
            str(data),
            "--output_dir",
            str(out),
            "--model",
            str(tiny_llama),
            "--load_in_4bit=false",
            "--use_cpu=true",
            "--bf16=false",
            "--target_modules",
            "all-linear",
            "--warmup_ratio",
            "0",
            "--logging_steps",
            "1",
            "--max_steps",
            "2",
            "--save_steps",
            "10",
            "--resume",
        ]
    )
    err = capsys.readouterr().err
    ledger.add("full disk: train log", faults=1, runs=1, false_ok=int(code == 0))
    assert code == 1
    assert f"araft: error: cannot write {out / 'log.jsonl'}: No space left on device" in err
    assert not (out / "summary.json").exists()


def test_a_read_only_disk_is_one_line_and_changes_nothing(data_dir, corpus_index, small_disk, ledger):
    if can_mount() is not None:
        pytest.skip(f"a read-only filesystem needs a tmpfs mount here ({can_mount()})")
    disk = small_disk(300_000)
    out = disk.dir / "traj.jsonl"
    out.write_text('{"question_id": "x"')  # a torn tail: repairing it is a write, refused
    disk.read_only()
    first = disk.run(*_generate_argv(data_dir, corpus_index, out))
    one_error_line(first, f"cannot write {out}", "read-only")
    ledger.add("read-only disk: generate", faults=1, runs=1, false_ok=int(first.returncode == 0))
    assert out.read_text() == '{"question_id": "x"'


# -- one writer per output -------------------------------------------------------------------------


def test_two_generate_runs_at_once_write_every_question_once(data_dir, corpus_index, tmp_path, ledger):
    from evals.hotpotqa import load_questions

    want = {q.id for q in load_questions(data_dir / "dev_distractor_b300.jsonl")}
    out = tmp_path / "traj.jsonl"
    procs = [
        subprocess.Popen(
            araft(*_generate_argv(data_dir, corpus_index, out)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    for p, _, err in results:
        if p.returncode != 0:  # the one that came second, if the first still held the output
            assert p.returncode == 1
            assert "araft: error: " in err and "is being written by another run (pid " in err, err[-2000:]
            assert "Traceback" not in err
    assert any(p.returncode == 0 for p, _, _ in results)
    got = whole_keys(out) + whole_keys(rejects_path(out))
    ledger.add(
        "two writers: generate",
        faults=1,
        runs=2,
        completed=sum(p.returncode == 0 for p, _, _ in results),
        lost=len(want - set(got)),
    )
    assert len(got) == len(set(got)) == len(want) and set(got) == want
    again = subprocess.run(araft(*_generate_argv(data_dir, corpus_index, out)), capture_output=True, text=True)
    assert again.returncode == 0 and "skipped 300 already done" in again.stdout
    assert sorted(whole_keys(out) + whole_keys(rejects_path(out))) == sorted(want)


@pytest.mark.parametrize("command", ["generate", "eval", "corpus build", "train"])
def test_an_output_another_run_holds_is_refused_naming_its_pid(
    command, data_dir, corpus_index, tiny_llama, tmp_path, ledger
):
    questions = data_dir / "dev_distractor_b300.jsonl"
    out = tmp_path / "out"
    argv = {
        "generate": _generate_argv(data_dir, corpus_index, out),
        "eval": [
            "eval",
            "--questions",
            questions,
            "--model",
            "oracle",
            "--corpus",
            corpus_index,
            "--limit",
            "5",
            "--out",
            out,
        ],
        "corpus build": ["corpus", "build", questions, "--out", out],
        "train": [
            "train",
            "sft",
            "--data",
            GOLDEN / "expected_sft_step.jsonl",
            "--output_dir",
            out,
            "--model",
            tiny_llama,
            "--load_in_4bit=false",
            "--use_cpu=true",
            "--bf16=false",
        ],
    }[command]
    with output_lock(out):
        held = subprocess.run(araft(*argv), capture_output=True, text=True, timeout=300)
    one_error_line(held, f"{out} is being written by another run (pid {os.getpid()}")
    ledger.add(f"two writers: {command}", faults=1, runs=1, false_ok=int(held.returncode == 0))
    assert not out.exists()
    assert not lock_path(out).exists()  # released and removed


# -- inputs and outputs that cannot be right ---------------------------------------------------------


@pytest.mark.parametrize("command", ["generate", "eval"])
def test_repeated_question_ids_are_refused_naming_them(command, data_dir, corpus_index, tmp_path, capsys, ledger):
    from araft import main

    lines = (data_dir / "dev_distractor_b300.jsonl").read_text().splitlines()[:3]
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join([*lines, lines[1]]) + "\n")
    qid = json.loads(lines[1]).get("_id", json.loads(lines[1]).get("id"))
    out = tmp_path / "out"
    common = ["--questions", str(questions), "--corpus", str(corpus_index), "--out", str(out)]
    argv = (
        ["generate", "--teacher", "oracle", *common]
        if command == "generate"
        else ["eval", "--model", "oracle", *common]
    )
    code = main(argv)
    err = capsys.readouterr().err
    ledger.add("repeated question ids", faults=1, runs=1, false_ok=int(code == 0))
    assert code == 2
    assert err.startswith("araft: error: 1 question id appears more than once") and qid in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("command", ["generate", "eval"])
def test_an_out_of_the_wrong_kind_is_one_line(command, data_dir, corpus_index, tmp_path, capsys):
    from araft import main

    out = tmp_path / "out"
    if command == "eval":
        out.write_text("a file, where eval writes a folder\n")
        argv = ["eval", "--model", "oracle", "--limit", "2"]
    else:
        out.mkdir()
        argv = ["generate", "--teacher", "oracle", "--limit", "2"]
    code = main(
        [
            *argv,
            "--questions",
            str(data_dir / "dev_distractor_b300.jsonl"),
            "--corpus",
            str(corpus_index),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"araft: error: --out {out} is a ") and len(err.strip().splitlines()) == 1
