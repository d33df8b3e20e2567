"""The teacher behind an OpenAI-compatible server, misbehaving: a question whose calls keep
failing is retried a bounded number of times and recorded as an error, the run goes on, and no
record is lost or doubled (also across a restart). The API key never reaches an output."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from araft import main
from evals.generate import rejects_path
from faults.fault_servers import TEACHER_FAULTS, TeacherServer, serve

openai = pytest.importorskip("openai", reason="pip install -e '.[openai]'")


PLANTED_KEY = "sk-araft-planted-7f3a9c0e51d24b68"
RETRIES = 2  # run_pool's retries per question in araft generate
TIMEOUT = 1.0
SLACK = 3.0  # a busy 2-core machine; the faults would hold a call for 30 s or forever

ONCE = ("hang", "500", "truncated", "reset", "malformed")  # recover on the retry


def _questions(path: Path) -> list[dict]:
    rows = [
        {"_id": f"ok{i}", "question": f"Which city is question {i} about?", "answer": "Philadelphia"} for i in range(4)
    ]
    rows += [
        {"_id": f"always-{f}", "question": f"[{f}] Which city is it?", "answer": "Philadelphia"} for f in TEACHER_FAULTS
    ]
    rows += [{"_id": f"once-{f}", "question": f"[{f}-once] Which city is it?", "answer": "Philadelphia"} for f in ONCE]
    for row in rows:
        row.update(type="bridge", level="hard", supporting_facts=[], context=[])
    path.write_text(json.dumps(rows))
    return rows


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["question_id"] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def teacher():
    with serve(TeacherServer()) as server:
        yield server


def test_generate_survives_a_misbehaving_teacher(teacher, tmp_path, monkeypatch, ledger, capsys):
    from helpers import MINI_CORPUS

    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    rows = _questions(tmp_path / "q.json")
    out = tmp_path / "traj.jsonl"
    argv = [
        "generate",
        "--questions",
        str(tmp_path / "q.json"),
        "--teacher",
        f"openai:teacher@{teacher.url}/v1",
        "--corpus",
        str(MINI_CORPUS),
        "--out",
        str(out),
        "--concurrency",
        "4",
        "--prompt",
        "zeroshot",
        "--max-steps",
        "3",
        "--request-timeout",
        str(TIMEOUT),
        "--request-retries",
        "0",
    ]
    start = time.monotonic()
    assert main(argv) == 0
    seconds = time.monotonic() - start
    kept, rejects = _ids(out), _ids(rejects_path(out))
    # Every question once, in one file or the other: nothing lost, nothing doubled.
    assert sorted(kept + rejects) == sorted(r["_id"] for r in rows)
    errors = {json.loads(line)["question_id"]: json.loads(line) for line in rejects_path(out).read_text().splitlines()}
    for fault in TEACHER_FAULTS:
        if fault == "no-stop":
            continue
        record = errors[f"always-{fault}"]
        assert record["status"] == "error" and record["error"], fault
        # The server saw the first call and each retry, no more.
        assert teacher.seen[f"[{fault}] Which city is it?"] == RETRIES + 1, fault
    assert {f"once-{f}" for f in ONCE} | {f"ok{i}" for i in range(4)} == set(kept)
    # A server that ignores the stop sequence: its invented observation is cut, never recorded.
    no_stop = errors["always-no-stop"]
    assert no_stop["status"] == "step_limit"
    assert all("invented" not in (s["observation"] or "") and "Observation:" not in s["raw"] for s in no_stop["steps"])
    assert f"Bearer {PLANTED_KEY}" in teacher.seen_keys  # the key was used ...
    for path in (out, rejects_path(out)):  # ... and written nowhere
        assert PLANTED_KEY not in path.read_text()
    assert PLANTED_KEY not in "".join(capsys.readouterr())
    ledger.add(
        "teacher server",
        faults=len(TEACHER_FAULTS) + len(ONCE),
        runs=len(rows),
        completed=len(rows),
        lost=len(rows) - len(set(kept + rejects)),
    )

    # Restarted with the same arguments: everything is done, nothing is asked or written again.
    before = (out.read_bytes(), rejects_path(out).read_bytes())
    calls = sum(teacher.seen.values())
    assert main(argv) == 0
    assert (out.read_bytes(), rejects_path(out).read_bytes()) == before
    assert sum(teacher.seen.values()) == calls
    print(f"generate over {len(rows)} questions with faults: {seconds:.1f} s")


def test_unreachable_teacher_fails_fast_with_one_line(tmp_path, capsys):
    _questions(tmp_path / "q.json")
    code = main(
        [
            "generate",
            "--questions",
            str(tmp_path / "q.json"),
            "--teacher",
            "openai:t@http://127.0.0.1:9/v1",
            "--out",
            str(tmp_path / "o.jsonl"),
            "--corpus",
            str(tmp_path / "q.json"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unreachable" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("fault", ["hang", "reset", "503"])
def test_a_failing_teacher_call_ends_within_its_timeout(teacher, fault, ledger):
    from langchain_core.messages import HumanMessage

    from araft_lc.chat.model_spec import load_chat_model

    model = load_chat_model(f"openai:teacher@{teacher.url}/v1", request_timeout=TIMEOUT, max_retries=0)
    start = time.monotonic()
    expected = {"hang": openai.APITimeoutError, "reset": openai.APIConnectionError, "503": openai.InternalServerError}
    with pytest.raises(expected[fault]):
        model.invoke([HumanMessage(f"Question: [{fault}] Which city is it?")])
    seconds = time.monotonic() - start
    # A bound, not a benchmark: the hung server holds the call for 30 s.
    assert seconds < TIMEOUT + SLACK, f"{fault}: {seconds:.2f} s"
    ledger.add("teacher server", faults=1, seconds=seconds)
