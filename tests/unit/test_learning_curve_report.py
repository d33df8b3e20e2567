"""benchmarks.learning_curve_report: each point's scores over both halves, paired with the baseline."""

import json
import os
import shutil
import time

import pytest
from test_failures import answer, run

from benchmarks.learning_curve_report import curve, keep, main, table, unseen_pages
from evals.hotpotqa import Question


def _q(i):
    return Question(id=f"q{i}", question=f"question {i}?", answer=f"answer {i}", type="bridge", level="hard")


def _eval(prefix, index, right):
    """An evaluation of 4 questions in two halves; the questions in ``right`` answered exactly."""
    for part in (0, 1):
        folder = prefix.parent / f"{prefix.name}-{index}-part{part}"
        folder.mkdir(parents=True)
        runs = [
            run([answer(q.answer if i in right else "no")], q=q)
            for i, q in ((i, _q(i)) for i in range(2 * part, 2 * part + 2))
        ]
        (folder / "trajectories.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in runs))
        (folder / "report.json").write_text("{}")  # araft eval writes it at its end


def test_points_are_scored_over_both_halves_and_paired_with_the_baseline(tmp_path, capsys):
    _eval(tmp_path / "base", "old", right={0})
    _eval(tmp_path / "more", "old", right={0, 1, 3})
    rows = curve(str(tmp_path / "base"), [(600, str(tmp_path / "base")), (1200, str(tmp_path / "more"))], ["old"])
    assert [(r["questions"], r["f1"], r["em"]) for r in rows] == [(600, 25.0, 25.0), (1200, 75.0, 75.0)]
    assert rows[0]["vs_baseline"] == {"f1": 0.0, "low": 0.0, "high": 0.0}
    assert rows[1]["vs_baseline"] == {"f1": 50.0, "low": 0.0, "high": 100.0}  # 4 questions: a wide interval
    png = tmp_path / "curve.png"
    argv = ["--baseline", str(tmp_path / "base"), "--point", f"1200={tmp_path / 'more'}", "--indexes", "old"]
    assert main([*argv, "--png", str(png)]) == 0
    assert "| 1,200 | old | 75.00 | 75.00 | +50.0 [" in capsys.readouterr().out and png.stat().st_size > 0


def test_a_half_done_or_malformed_point_is_refused(tmp_path):
    _eval(tmp_path / "base", "old", right={0})
    with pytest.raises(SystemExit, match="more-old-part0 holds no finished evaluation: run .* eval more old"):
        curve(str(tmp_path / "base"), [(1200, str(tmp_path / "more"))], ["old"])
    _eval(tmp_path / "more", "old", right={1})
    (tmp_path / "more-old-part1" / "report.json").unlink()  # a half still running
    with pytest.raises(SystemExit, match="more-old-part1 holds no finished evaluation"):
        curve(str(tmp_path / "base"), [(1200, str(tmp_path / "more"))], ["old"])
    (tmp_path / "more-old-part1" / "report.json").write_text("{}")
    (tmp_path / "more-old-part1" / "trajectories.jsonl").write_text("")  # a half of other questions: none here
    with pytest.raises(SystemExit, match="2 runs of 2 questions, the baseline's 4: evaluate both on the same"):
        curve(str(tmp_path / "base"), [(1200, str(tmp_path / "more"))], ["old"])
    with pytest.raises(SystemExit, match="write it QUESTIONS=PREFIX"):
        main(["--baseline", str(tmp_path / "base"), "--point", "more"])


def test_the_questions_whose_pages_no_training_question_had_are_scored_apart(tmp_path, capsys):
    evaluation = [
        Question(id=f"q{i}", question="?", answer="a", supporting_titles=(f"P{i}", "Shared")) for i in range(4)
    ]
    evaluation[3] = Question(id="q3", question="?", answer="a", supporting_titles=("P3", "Other"))
    training = [Question(id="t", question="?", answer="a", supporting_titles=("P0", "P1"))]
    assert unseen_pages(evaluation, training) == {"q2", "q3"}
    _eval(tmp_path / "base", "old", right={0})
    _eval(tmp_path / "more", "old", right={0, 1, 3})
    rows = curve(str(tmp_path / "base"), [(1200, str(tmp_path / "more"))], ["old"], unseen={"q2", "q3"})
    assert rows[0]["unseen_pages"]["questions"] == 2 and rows[0]["unseen_pages"]["f1"] == 50.0  # q3 right, q2 not
    assert rows[0]["unseen_pages"]["vs_baseline"]["f1"] == 50.0 and rows[0]["f1"] == 75.0
    assert "| F1 on the 2 with unseen pages |" in table(rows) and table(rows).endswith(
        "| 50.00 | +50.0 [+0.0, +100.0] |"
    )
    same = tmp_path / "questions.json"  # the evaluation's own questions as the training's: nothing unseen
    same.write_text(
        json.dumps(
            [
                {
                    "_id": "q0",
                    "question": "?",
                    "answer": "a",
                    "supporting_facts": [["P0", 0]],
                    "context": [["P0", ["Text."]]],
                    "type": "bridge",
                    "level": "hard",
                }
            ]
        )
    )
    argv = ["--baseline", str(tmp_path / "base"), "--point", f"1={tmp_path / 'more'}", "--indexes", "old"]
    with pytest.raises(SystemExit, match="every evaluation question shares a supporting page"):
        main([*argv, "--eval-questions", str(same), "--training-questions", str(same)])
    with pytest.raises(SystemExit, match="go together"):
        main(["--baseline", str(tmp_path / "base"), "--point", "1=x", "--eval-questions", "f.jsonl"])


def test_a_point_added_later_keeps_the_earlier_rows_as_measured_then(tmp_path, capsys):
    for index in ("old", "all"):
        _eval(tmp_path / "base", index, right={0})
        _eval(tmp_path / "most", index, right={0, 1, 2, 3})
    _eval(tmp_path / "rerun", "old", right={0, 2})  # the baseline evaluated again: not the same score
    _eval(tmp_path / "more", "old", right={0, 1, 3})
    first, later = tmp_path / "curve.json", tmp_path / "later.json"
    argv = ["--baseline", str(tmp_path / "base"), "--point", f"2838={tmp_path / 'most'}", "--out", str(first)]
    assert main([*argv, "--point", f"600={tmp_path / 'base'}", "--indexes", "old", "all"]) == 0
    earlier = json.loads(first.read_text())
    earlier["date"] = "2026-12-07"  # measured the day before, by a report that dated no rows
    earlier["command"] = earlier["command"].replace("--baseline ", "--baseline=")
    for row in earlier["rows"]:
        del row["measured"], row["baseline"]
    first.write_text(json.dumps(earlier))
    shutil.rmtree(tmp_path / "most-old-part0")  # its folders are gone
    part0, part1 = (tmp_path / f"more-old-part{k}" / "report.json" for k in (0, 1))
    os.utime(part0, (part1.stat().st_mtime + 120,) * 2)  # the half that finished last dates the point
    argv = ["--baseline", str(tmp_path / "rerun"), "--point", f"600={tmp_path / 'rerun'}", "--indexes", "old"]
    assert main([*argv, "--point", f"1200={tmp_path / 'more'}", "--keep", str(first), "--out", str(later)]) == 0
    rows = json.loads(later.read_text())["rows"]  # the "all" rows are not asked for
    assert [(r["questions"], r["index"], r["f1"], r["measured"] == "2026-12-07") for r in rows] == [
        (600, "old", 50.0, False),
        (1200, "old", 75.0, False),
        (2838, "old", 100.0, True),
    ]
    assert rows[2]["baseline"] == {"eval": str(tmp_path / "base"), "f1": 25.0, "measured": "2026-12-07"}
    assert rows[2]["vs_baseline"]["f1"] == 75.0 and rows[1]["vs_baseline"]["f1"] == 25.0
    assert rows[1]["baseline"]["f1"] == 50.0 and rows[1]["measured"] == time.strftime(
        "%Y-%m-%d %H:%M", time.gmtime(part0.stat().st_mtime)
    )
    assert "| 2,838 | old | 100.00 | 100.00 | +75.0 [+25.0, +100.0] | 25.00 |" in capsys.readouterr().out
    again = keep(json.loads(later.read_text()), [], ["old"])  # a dated report keeps its rows' own dates
    assert [r["measured"] for r in again] == [r["measured"] for r in rows]
    with pytest.raises(SystemExit, match="differ in the unseen-pages column"):
        keep({"date": "d", "rows": [{**rows[2], "unseen_pages": {"questions": 2}}]}, rows[:2], ["old"])
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(SystemExit, match="bad.json: not a report this command wrote"):
        main([*argv, "--keep", str(tmp_path / "bad.json")])
