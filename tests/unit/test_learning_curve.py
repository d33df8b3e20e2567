"""benchmarks.learning_curve: nested training sets cut by question."""

import json

import pytest

from benchmarks.learning_curve import subsets


def _records(path, questions, per_question=2):
    path.write_text(
        "".join(
            json.dumps({"question_id": q, "messages": [], "n": i}) + "\n"
            for q in questions
            for i in range(per_question)
        )
    )
    return str(path)


def _questions(path):
    return [json.loads(line)["question_id"] for line in path.read_text().splitlines()]


def test_each_set_holds_the_base_and_the_smaller_sets_and_keeps_a_questions_records_together(tmp_path):
    base = _records(tmp_path / "base.jsonl", ["b1", "b2"])
    more = _records(tmp_path / "more.jsonl", [f"m{i}" for i in range(10)], per_question=3)
    rows = subsets(base, more, [2, 5, 12], seed=0, out=tmp_path / "sets")
    assert [(r["questions"], r["records"]) for r in rows] == [(2, 4), (5, 13), (12, 34)]
    sets = [_questions(tmp_path / "sets" / f"q{n}.jsonl") for n in (2, 5, 12)]
    assert sets[0] == ["b1", "b1", "b2", "b2"]
    assert sets[1][: len(sets[0])] == sets[0] and set(sets[1]) <= set(sets[2])  # nested
    assert all(sets[2].count(q) == 3 for q in set(sets[2]) - {"b1", "b2"})  # a question whole or not at all
    again = subsets(base, more, [5], seed=0, out=tmp_path / "again")
    assert _questions(tmp_path / "again" / "q5.jsonl") == sets[1] and again[0]["records"] == 13
    other = subsets(base, more, [5], seed=1, out=tmp_path / "other")
    assert other[0]["records"] == 13 and _questions(tmp_path / "other" / "q5.jsonl") != sets[1]


def test_overlapping_inputs_and_sizes_out_of_range_are_refused(tmp_path):
    base = _records(tmp_path / "base.jsonl", ["a", "b"])
    with pytest.raises(SystemExit, match="1 questions are in both --base and --more"):
        subsets(base, _records(tmp_path / "more.jsonl", ["b", "c"]), [3], seed=0, out=tmp_path / "x")
    with pytest.raises(SystemExit, match="between 2 .* and 4"):
        subsets(base, _records(tmp_path / "more2.jsonl", ["c", "d"]), [5], seed=0, out=tmp_path / "y")


def test_extra_records_join_the_sets_that_hold_their_questions_once(tmp_path):
    base = _records(tmp_path / "base.jsonl", ["b1", "b2"])
    more = _records(tmp_path / "more.jsonl", ["m1", "m2"])
    extra = tmp_path / "own.jsonl"
    held = (tmp_path / "base.jsonl").read_text().splitlines()[0]  # a student run word for word the teacher's
    extra.write_text(
        "\n".join([held, json.dumps({"question_id": "b2", "messages": [], "n": 9}), *_lines("m1", "m2", "m2")]) + "\n"
    )
    [row] = subsets(base, more, [2], seed=0, out=tmp_path / "sets", extra=str(extra))
    assert row["extra"] == {"records": 1, "questions": 2, "already_held": 1, "outside_the_set": 3}
    lines = (tmp_path / "sets" / "q2.jsonl").read_text().splitlines()
    assert row["records"] == len(lines) == 5 and lines[-1] == json.dumps({"question_id": "b2", "messages": [], "n": 9})
    [full] = subsets(base, more, [4], seed=0, out=tmp_path / "all", extra=str(extra))
    assert full["extra"] == {"records": 3, "questions": 4, "already_held": 2, "outside_the_set": 0}  # m2's twice: once
    assert full["records"] == 11


def _lines(*questions):
    return [json.dumps({"question_id": q, "messages": [], "n": 7}) for q in questions]
