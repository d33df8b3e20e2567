"""The benchmark suite keeps working: ``python -m benchmarks --smoke`` runs every benchmark at a
tiny size and prints its table. Its figures are not checked: benchmarks, not timed tests."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT, hotpotqa_dir


def test_every_benchmark_runs_at_smoke_size():
    env = {**os.environ, "ARAFT_DATA_DIR": str(hotpotqa_dir())}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    assert table.startswith("figure")
    assert "LangGraph overhead per agent step" in table and "synthetic index, 2,000 pages" in table
    assert "decode step: a token of a full batch against one alone" in table
    if (hotpotqa_dir() / "wiki_corpus.jsonl.gz").is_file():
        for figure in (
            "sample index",
            "prefix cache: identical outputs",
            "batching (padded): identical outputs",
            "batching (continuous): identical outputs",
            "static decode: identical outputs",
        ):
            assert figure in table
        # greedy outputs are the same with and without the cache, batched or not, static or dynamic
        identical = [line for line in table.splitlines() if "identical outputs" in line]
        assert len(identical) == 4 and all(" True " in line for line in identical)
    else:
        assert "skipped, the HotpotQA sample is not at" in done.stderr


def test_unknown_benchmark_is_named():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and "unknown benchmark 'nope'" in done.stderr


def test_self_consistency_analysis_votes_every_prefix_of_the_runs(tmp_path, tiny_llama):
    import json

    from araft_lc.react.trajectory import TrajectoryRecord
    from benchmarks.self_consistency import analyse

    def run(k: int, answer: str, observation: str = "") -> dict:
        return {
            "run": k,
            "answer": answer,
            "status": "answered",
            "steps": [
                {
                    "thought": "t",
                    "action": "Answer",
                    "action_input": answer,
                    "observation": observation,
                    "raw": f"Action: {answer}",
                }
            ],
        }

    records = [  # q1: greedy wrong, two sampled runs right; q2: greedy right, the vote of 3 wrong
        TrajectoryRecord(
            "q1",
            "Who?",
            "answered",
            "Fox",
            [],
            gold_answer="Penn",
            runs=[run(0, "Fox"), run(1, "Penn", "by Penn"), run(2, "Penn")],
        ),
        TrajectoryRecord(
            "q2",
            "Who?",
            "answered",
            "Lucca",
            [],
            gold_answer="Lucca",
            runs=[run(0, "Lucca", "Lucca is"), run(1, "Pisa"), run(2, "Pisa")],
        ),
    ]
    (tmp_path / "trajectories.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    result = analyse([str(tmp_path)], str(tiny_llama), variants=tmp_path / "v")
    rows = {(r["k"], r["rule"]): r for r in result["rows"]}
    assert rows[(1, "majority")]["f1"] == 50.0 and rows[(1, "majority")]["vs_greedy"][0] == 0.0
    assert rows[(2, "majority")]["f1"] == 50.0  # a tie of two goes to the greedy run
    assert rows[(3, "majority")]["f1"] == 50.0  # q1 won, q2 lost
    assert rows[(3, "grounded")]["f1"] == 100.0  # only answers found in their run's observations vote
    assert result["oracle_best_of_k_f1"] == 100.0
    tokens = [rows[(k, "majority")]["output_tokens_per_question"] for k in (1, 2, 3)]
    assert 0 < tokens[0] < tokens[1] < tokens[2]  # counted with the tokenizer: each run adds its own
    voted = [
        json.loads(line) for line in (tmp_path / "v" / "k3-grounded" / "trajectories.jsonl").read_text().splitlines()
    ]
    assert [v["prediction"] for v in voted] == ["Penn", "Lucca"] and voted[0]["scores"]["f1"] == 1.0


def test_self_consistency_counts_tokens_with_a_presets_tokenizer(tmp_path, smollm2):
    import json

    from araft_lc.react.trajectory import TrajectoryRecord
    from benchmarks.self_consistency import analyse

    step = {"thought": "", "action": "Answer", "action_input": "Penn", "observation": "", "raw": "Action: Penn"}
    runs = [{"run": k, "answer": "Penn", "status": "answered", "steps": [step]} for k in range(2)]
    record = TrajectoryRecord("q1", "Who?", "answered", "Penn", [], gold_answer="Penn", runs=runs)
    (tmp_path / "trajectories.jsonl").write_text(json.dumps(record.to_dict()) + "\n")
    rows = analyse([str(tmp_path)], "araft-smollm2")["rows"]  # the preset's model is a GGUF: its converted folder
    assert [r["output_tokens_per_question"] for r in rows if r["rule"] == "majority"] == [3, 6]
