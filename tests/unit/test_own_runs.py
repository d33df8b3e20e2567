"""finetune.own_runs: the student's own exact runs kept for expert iteration, and `araft convert
sft --own-runs` writing their records."""

import json

import pytest
from test_failures import answer, run, search

from araft import main
from araft_lc.react.trajectory import Step
from finetune.own_runs import DROPPED, own_runs

RANGERS, COACH = search("Rangers", "Rangers"), search("John Smith (coach)", "John Smith (coach)")
UNPARSED = Step("", None, None, "could not parse", raw="?", error="parse_error")


def _seeded(record, repeat):
    record.producer = {"repeat": repeat}
    return record


def test_only_exact_clean_distinct_runs_are_kept_at_most_n_a_question_in_seed_order():
    exact = run([RANGERS, COACH, answer("Toronto Maple Leafs")])
    shorter = run([COACH, answer("Toronto Maple Leafs")])
    third = run([search("Smith coach", "John Smith (coach)"), answer("Toronto Maple Leafs")])
    runs = [
        _seeded(third, 5),  # finished first, seeded last
        _seeded(run([RANGERS, answer("Boston Bruins")]), 0),  # wrong
        _seeded(run([RANGERS, RANGERS, COACH, answer("Toronto Maple Leafs")]), 1),  # a loop, then right
        _seeded(run([RANGERS, UNPARSED, answer("Toronto Maple Leafs")]), 2),
        _seeded(run([RANGERS, COACH], status="step_limit"), 3),
        _seeded(exact, 4),
        _seeded(run([RANGERS, COACH, answer("Toronto Maple Leafs")]), 6),  # the same words as seed 4's
        _seeded(shorter, 7),
    ]
    picked = own_runs(runs, per_question=2)
    assert picked.kept == [exact, third]  # seed order, not file order; the third exact one is over the cap
    assert picked.runs == 8 and picked.questions == 1
    assert picked.dropped == {"not_exact": 2, "step_error": 1, "repeated_action": 1, "duplicate": 1, "over_cap": 1}
    assert set(picked.dropped) <= set(DROPPED)
    assert "kept 2 of 8, on 1 questions; left out 2 not_exact, 1 step_error" in picked.summary()
    assert own_runs(runs, per_question=5).kept == [exact, third, shorter]
    again = own_runs(list(reversed(runs)), per_question=2)
    assert again.kept == [exact, third]  # the same runs give the same selection
    with pytest.raises(ValueError, match="per_question is 0: keep at least 1"):
        own_runs(runs, per_question=0)


def test_a_repeat_the_guard_flagged_is_dropped_even_in_other_words():
    flagged = Step("", "Wikipedia", "Rangers club", "Rangers again", raw="search", error="repeated_action")
    assert own_runs([run([RANGERS, flagged, answer("Toronto Maple Leafs")])], 1).dropped == {"repeated_action": 1}
    again = search("  RANGERS", "Rangers")  # the same action, other case and spacing
    assert own_runs([run([RANGERS, again, answer("Toronto Maple Leafs")])], 1).dropped == {"repeated_action": 1}


def test_convert_writes_the_kept_runs_records_and_says_what_it_left_out(tmp_path, capsys):
    runs = [
        _seeded(run([RANGERS, COACH, answer("Toronto Maple Leafs")]), 0),
        _seeded(run([RANGERS, answer("John Smith")]), 1),
        _seeded(run([COACH, answer("Toronto Maple Leafs")]), 2),
    ]
    path = tmp_path / "trajectories.jsonl"  # as araft eval --repeats writes them
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in runs))
    out = tmp_path / "own.jsonl"
    argv = ["convert", "sft", str(path), "--out", str(out), "--prompt-style", "zeroshot_turns"]
    assert main([*argv, "--granularity", "trajectory", "--own-runs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "own runs: kept 1 of 3, on 1 questions; left out 1 not_exact, 1 over_cap" in printed
    assert "1 sft records (trajectory 1) from 3 trajectories" in printed
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["content"] for m in row["messages"] if m["role"] == "assistant"][-1].endswith("Toronto Maple Leafs]")
    assert main([*argv, "--force", "--own-runs", "0"]) == 2
    assert "--own-runs 0: keep at least 1" in capsys.readouterr().err
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps(runs[1].to_dict()) + "\n")
    assert main(["convert", "sft", str(wrong), "--out", str(tmp_path / "none.jsonl"), "--own-runs", "2"]) == 2
    assert "no run to train on: own runs: kept 0 of 1, on 0 questions; left out 1 not_exact" in capsys.readouterr().err
    assert not (tmp_path / "none.jsonl").exists()
    runs.append(_seeded(run([RANGERS, COACH], status="step_limit"), 3))
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in runs))
    without = main([*argv, "--force", "--granularity", "trajectory"])  # without the flag every run trains
    assert without == 0 and out.read_text().count("\n") == 4
    assert "note: 1 of the 4 trajectories did not answer" in capsys.readouterr().err
