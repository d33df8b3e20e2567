"""evals: sampling, leakage, agent metrics, the runner (resume, repeats) and the reports."""

import json

import pytest

from araft import main
from araft_lc.react.trajectory import Step, TrajectoryRecord
from evals.hotpotqa import Question, check_leakage, load_questions, parse_levels, sample_questions
from evals.metrics import score
from evals.report import compare, write_report
from evals.run_metrics import record_metrics, summarize


def _questions(n_per_level=5):
    return [
        Question(f"{level}{i}", f"q {level} {i}?", "a", level=level)
        for level in ("easy", "medium", "hard")
        for i in range(n_per_level)
    ]


def test_sampling_is_seeded_per_level_and_not_the_first_rows():
    pool = _questions(20)
    a = sample_questions(pool, levels={"easy": 3, "hard": 2}, seed=1)
    assert [q.level for q in a] == ["easy"] * 3 + ["hard"] * 2
    assert a == sample_questions(pool, levels={"easy": 3, "hard": 2}, seed=1)
    assert a != sample_questions(pool, levels={"easy": 3, "hard": 2}, seed=2)
    assert [q.id for q in sample_questions(pool, limit=5, seed=0)] != [q.id for q in pool[:5]]
    assert sample_questions(pool, limit=5, seed=3) == sample_questions(pool, limit=20, seed=3)[:5]
    with pytest.raises(ValueError, match="asks for 30 easy questions, the files hold 20"):
        sample_questions(pool, levels={"easy": 30})
    assert parse_levels("easy=100, medium=100,hard=100") == {"easy": 100, "medium": 100, "hard": 100}
    with pytest.raises(ValueError, match="write LEVEL=COUNT"):
        parse_levels("easy:100")


def test_leakage_is_refused(tmp_path):
    questions = _questions(2)
    train = tmp_path / "sft.jsonl"
    train.write_text(json.dumps({"question_id": "medium1", "prompt": [], "completion": []}) + "\n")
    with pytest.raises(ValueError, match="1 of the 6 evaluation questions are in .*sft.jsonl \\(e.g. medium1\\)"):
        check_leakage(questions, [train])
    check_leakage([q for q in questions if q.id != "medium1"], [train])


def _step(action, value, error=None):
    return Step("t", action, value, None if action == "Answer" else "obs", raw="", error=error)


def test_record_metrics():
    record = TrajectoryRecord(
        "q",
        "q?",
        "answered",
        "the Beatles",
        [
            _step("Wikipedia", "Beatles"),
            _step(None, None, "parse_error"),
            _step("Wikipedia", " beatles "),
            _step("Nope", "x", "unknown_tool"),
            _step("Answer", "the Beatles"),
        ],
        gold_answer="Beatles",
        scores=score("the Beatles", "Beatles"),
        calls=[{"usage": {"output_tokens": 7}}, {"usage": None}, {"usage": {"output_tokens": 5}}],
        seconds=1.5,
    )
    assert record_metrics(record) == {
        "f1": 100.0,
        "em": 100.0,
        "steps": 5.0,
        "step_limit": 0.0,
        "repeated": 100.0,
        "parse_error": 100.0,
        "tool_errors": 1.0,
        "seconds": 1.5,
        "tokens": 12.0,
    }
    limit = TrajectoryRecord(
        "q", "q?", "step_limit", None, [_step("Wikipedia", "a")], gold_answer="a", scores=score(None, "a")
    )
    assert record_metrics(limit)["step_limit"] == 100.0 and record_metrics(limit)["f1"] == 0.0
    unparsed = TrajectoryRecord("q", "q?", "parse_error", None, [_step(None, None, "parse_error")] * 5)
    assert record_metrics(unparsed)["step_limit"] == 100.0 and record_metrics(unparsed)["parse_error"] == 100.0


def test_summary_is_mean_and_std_across_repeats():
    def rec(qid, level, repeat, prediction):
        return TrajectoryRecord(
            qid,
            "q?",
            "answered",
            prediction,
            [_step("Answer", prediction)],
            gold_answer="x",
            scores=score(prediction, "x"),
            producer={"repeat": repeat, "level": level},
        )

    records = [rec("1", "easy", 0, "x"), rec("2", "hard", 0, "x"), rec("1", "easy", 1, "x"), rec("2", "hard", 1, "y")]
    s = summarize(records)
    assert s["repeats"] == 2 and s["questions"] == 2 and list(s["levels"]) == ["easy", "hard", "all"]
    assert s["levels"]["easy"]["f1"] == {"mean": 100.0, "std": 0.0, "n": 1}
    assert s["levels"]["hard"]["em"]["mean"] == 50.0 and s["levels"]["hard"]["em"]["std"] == pytest.approx(70.71, 0.01)
    assert s["levels"]["all"]["em"] == {"mean": 75.0, "std": pytest.approx(35.36, 0.01), "n": 2}
    # each question's best repeat: question 2 answered exactly in one of its two
    assert s["best_of_repeats"] == {"f1": 100.0, "em": 100.0}
    assert "best_of_repeats" not in summarize(records[:2])


def test_report_says_the_best_of_the_repeats(tmp_path):
    def rec(qid, repeat, prediction):
        return TrajectoryRecord(
            qid,
            "q?",
            "answered",
            prediction,
            [_step("Answer", prediction)],
            gold_answer="x y",
            scores=score(prediction, "x y"),
            producer={"repeat": repeat, "level": "hard"},
        )

    runs = [rec("1", 0, "x y"), rec("2", 0, "z"), rec("1", 1, "z"), rec("2", 1, "x")]
    (tmp_path / "trajectories.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in runs))
    report = write_report(tmp_path)
    # the repeats score (100 + 0) / 2 and (0 + 66.7) / 2; each question at its best, (100 + 66.7) / 2
    assert report["levels"]["all"]["f1"]["mean"] == pytest.approx(41.67, 0.01)
    assert report["best_of_repeats"]["f1"] == pytest.approx(83.33, 0.01) and report["best_of_repeats"]["em"] == 50.0
    assert "Best of the 2 repeats per question (pass@2): F1 83.3 %, EM 50.0 %." in (tmp_path / "report.md").read_text()


def _eval(data_dir, out, *extra):
    return main(
        [
            "eval",
            "--questions",
            str(data_dir / "dev_distractor_b300.jsonl"),
            "--model",
            "oracle",
            "--corpus",
            str(data_dir / "wiki_corpus.jsonl.gz"),
            "--out",
            str(out),
            *extra,
        ]
    )


def test_eval_resumes_and_reports(data_dir, tmp_path, capsys):
    out = tmp_path / "oracle"
    assert _eval(data_dir, out, "--limit", "4", "--concurrency", "2") == 0
    assert _eval(data_dir, out, "--limit", "8", "--concurrency", "2") == 0
    printed = capsys.readouterr().out
    assert "tried 4, skipped 4 already done" in printed
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    ids = [json.loads(line)["question_id"] for line in lines]
    assert len(ids) == len(set(ids)) == 8
    report = json.loads((out / "report.json").read_text())
    assert report["levels"]["all"]["f1"]["mean"] == 100.0 and report["questions"] == 8
    assert "| hard | 8 | 100.0 | 100.0 |" in (out / "report.md").read_text()
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_refuses_training_questions(data_dir, tmp_path, capsys):
    questions = list(load_questions(data_dir / "dev_distractor_b300.jsonl"))
    sft = tmp_path / "sft.jsonl"
    sft.write_text("".join(json.dumps({"question_id": q.id}) + "\n" for q in questions[:50]))
    assert _eval(data_dir, tmp_path / "x", "--exclude", str(sft)) == 2
    assert "of the 300 evaluation questions are in" in capsys.readouterr().err


def test_repeats_with_sampling_on_a_real_model(tiny_llama, data_dir, tmp_path):
    out = tmp_path / "tiny"
    assert (
        main(
            [
                "eval",
                "--questions",
                str(data_dir / "dev_distractor_b300.jsonl"),
                "--model",
                f"hf:{tiny_llama}",
                "--corpus",
                str(data_dir / "wiki_corpus.jsonl.gz"),
                "--limit",
                "2",
                "--repeats",
                "2",
                "--temperature",
                "0.8",
                "--max-steps",
                "2",
                "--max-new-tokens",
                "8",
                "--prompt",
                "zeroshot",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert sorted((r["question_id"], r["producer"]["repeat"]) for r in records) == sorted(
        (q, r) for q in {x["question_id"] for x in records} for r in (0, 1)
    )
    assert all(r["calls"] and r["calls"][0]["usage"]["output_tokens"] > 0 for r in records)
    report = json.loads((out / "report.json").read_text())
    assert report["repeats"] == 2
    # the report names what ran: the backend the model chose, the sampling it did
    assert {k: report["producer"][k] for k in ("backend", "temperature", "seed", "samples", "max_new_tokens")} == {
        "backend": "torch",
        "temperature": 0.8,
        "seed": 0,
        "samples": 1,
        "max_new_tokens": 8,
    }


def test_report_compares_runs(data_dir, tmp_path, capsys):
    for name in ("a", "b"):
        assert (
            _eval(
                data_dir,
                tmp_path / name,
                "--limit",
                "3",
                "--seed",
                "1" if name == "a" else "2",
                "--label",
                f"run-{name}",
            )
            == 0
        )
    capsys.readouterr()
    out = tmp_path / "cmp.md"
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| F1 % | hard | all |" in table and "| run-a | 100.0 | 100.0 |" in table and "| run-b |" in table
    assert out.read_text() == table and (tmp_path / "cmp.png").is_file()
    assert compare([tmp_path / "a"]).count("run-a") == 2
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "| run-b | 0 | - | - |" in table  # another question sample: nothing to pair
    assert _eval(data_dir, tmp_path / "c", "--limit", "3", "--seed", "1", "--label", "run-c") == 0
    assert "| run-c | 3 | +0.0 | [+0.0, +0.0] |" in compare([tmp_path / "a", tmp_path / "c"])


def test_paired_bootstrap_interval():
    from evals.paired import paired_bootstrap

    same = {f"q{i}": 50.0 for i in range(40)}
    better = {q: v + 10.0 for q, v in same.items()}
    diff = paired_bootstrap(same, better)
    assert (diff.mean, diff.low, diff.high, diff.n) == (10.0, 10.0, 10.0, 40)
    # half the questions gain 20 points, half none: the mean is 10, the interval around it, above 0
    mixed = {q: v + (20.0 if i % 2 else 0.0) for i, (q, v) in enumerate(same.items())}
    diff = paired_bootstrap(same, mixed)
    assert diff.mean == 10.0 and 0 < diff.low < 10.0 < diff.high < 20.0
    assert paired_bootstrap(same, mixed) == diff  # seeded
    with pytest.raises(ValueError, match="share no question"):
        paired_bootstrap(same, {"other": 1.0})
