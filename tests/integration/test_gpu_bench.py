"""The GPU benchmark's code runs end to end on a CPU at a tiny shape, and refuses the 7B shape
without CUDA; its figures here mean nothing and are not checked (benchmarks, not timed tests)."""

from __future__ import annotations

import json

import pytest
from helpers import MINI_CORPUS

from benchmarks import gpu_bench, gpu_report

TINY = [
    "--shape",
    "tiny",
    "--runs",
    "1",
    "--concurrency",
    "2",
    "--steps",
    "2",
    "--new-tokens",
    "6",
    "--decode-tokens",
    "6",
    "--corpus",
    str(MINI_CORPUS),
]


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": q, "answer": "?"}) + "\n"
            for i, q in enumerate(("Where is Lucca?", "Who founded Philadelphia?", "Which magazine was started first?"))
        )
    )
    return path


def test_refuses_the_7b_shape_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert gpu_bench.main(["--out", str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU here" in err
    assert not (tmp_path / "r.json").exists()


def test_tiny_shape_runs_every_stage_and_reports(tiny_llama, questions, tmp_path):
    out = tmp_path / "gpu_bench.json"
    argv = [
        *TINY,
        "--tokenizer",
        str(tiny_llama),
        "--questions",
        str(questions),
        "--work",
        str(tmp_path / "w"),
        "--out",
        str(out),
    ]
    assert gpu_bench.main([*argv, "--in-process"]) == 0
    result = json.loads(out.read_text())
    assert result["stamp"]["shape"] == "tiny" and "CPU" in result["stamp"]["machine"]
    for precision in ("bf16", "nf4"):
        assert result[f"{precision}_meta"]["rc"] == 0
        # greedy steps of the static path are the dynamic path's (fp32 on a CPU: exactly)
        assert result[precision]["static"]["same_steps_as_dynamic"] is True
        assert set(result[precision]["static"]["compile_s"]) == {"1024", "2048", "4096"}
    assert result["bf16"]["static_merged"]["same_steps_as_dynamic"] is True
    assert result["nf4"]["concurrency"]["n"] == 2
    figures = [f for f, _, _ in gpu_report.rows(result)]
    assert any("LoRA merged" in f for f in figures) and any("agent runs at once" in f for f in figures)
    # its section replaces the last one in RESULTS.md, beside the machine
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Measured results\n\n## Earlier\ntext\n")
    gpu_report.save_section(results_md, result)
    gpu_report.save_section(results_md, result)
    text = results_md.read_text()
    assert text.count(gpu_report.START) == 1 and text.startswith("# Measured results\n\n## Earlier\ntext\n")
    assert f"on {result['stamp']['machine']}" in text
    # each stage in its own process, as on a GPU machine (here the first stage only)
    assert gpu_bench.main([*argv, "--stages", "make"]) == 0
    assert json.loads(out.read_text())["make_meta"]["rc"] == 0
