"""araft eval end to end on the real SmolLM2-135M (the shipped model's weights, CPU)."""

import json

from araft import main


def test_smollm2_on_20_questions_writes_a_report_that_opens(data_dir, tmp_path):
    """The issue's CI-sized check: the real model (SmolLM2-135M, the base model, one short step
    per question) over 20 seeded questions of dev_distractor_a500.jsonl, end to end."""
    from matplotlib.image import imread

    out = tmp_path / "smollm2"
    assert (
        main(
            [
                "eval",
                "--questions",
                str(data_dir / "dev_distractor_a500.jsonl"),
                "--model",
                "smollm2-135m",
                "--corpus",
                str(data_dir / "wiki_corpus.jsonl.gz"),
                "--limit",
                "20",
                "--prompt",
                "zeroshot",
                "--max-steps",
                "1",
                "--max-new-tokens",
                "16",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len((out / "trajectories.jsonl").read_text().splitlines()) == 20
    report = json.loads((out / "report.json").read_text())
    assert report["levels"]["all"]["f1"]["n"] == 20
    assert "| hard | 20 |" in (out / "report.md").read_text()
    assert imread(out / "report.png").shape[0] > 100  # a real image
