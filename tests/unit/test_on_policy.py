"""On-policy corrections: the teacher's step from each state a student run reached, where the
student's step was a mistake, and the DPO records made of them."""

import json

from test_failures import Q, answer, questions_file, run, search

from araft_lc.react.trajectory import Step, TrajectoryRecord
from evals.on_policy import corrections
from evals.oracle import OracleChatModel

TEACHER = OracleChatModel([Q])


def fixes(steps, status="answered"):
    return [(c.step, c.reason) for c in corrections(run(steps, status), Q, TEACHER)]


def test_a_run_like_the_teacher_s_needs_no_correction():
    assert (
        fixes(
            [
                search("Rangers", "Rangers"),
                search("John Smith (coach)", "John Smith (coach)"),
                answer("Toronto Maple Leafs"),
            ]
        )
        == []
    )
    # other words that read the page the run needed are no mistake either
    assert (
        fixes(
            [
                search("the Rangers", "Rangers"),
                search("coach John Smith", "John Smith (coach)"),
                answer("the Toronto Maple Leafs"),
            ]
        )
        == []
    )


def test_each_mistake_gets_the_teacher_s_step_from_the_student_s_state():
    wrong_page = search("Rangers FC", "Rangers F.C.")
    found = corrections(run([wrong_page, search("Rangers FC", "Rangers F.C."), answer("Glasgow")]), Q, TEACHER)
    # the oracle gives up after a miss (it has no label there): only its first correction stands
    [first] = found
    assert (first.step, first.reason) == (0, "search")
    assert "action_input: Rangers]" in first.chosen and "action_input: Rangers FC]" in first.rejected


def test_the_visible_teacher_labels_states_after_a_miss(data_dir):
    from araft_lc.wiki.select import wikipedia_tool
    from evals.hotpotqa import load_questions
    from evals.visible_teacher import VisibleTeacherChatModel

    tool = wikipedia_tool(data_dir / "wiki_corpus.jsonl.gz")
    questions = list(load_questions(data_dir / "dev_distractor_b300.jsonl"))[:40]
    teacher = VisibleTeacherChatModel(questions, tool.backend)
    labelled = 0
    for q in questions:
        distractor = next((t for t in q.context if t not in q.supporting_titles), None)
        if distractor is None or q.type != "bridge":
            continue
        miss = Step("", "Wikipedia", distractor, tool.invoke(distractor), raw="")
        student = TrajectoryRecord(q.id, q.question, "answered", "x", [miss, miss, answer("x")], gold_answer=q.answer)
        reasons = {c.step: c.reason for c in corrections(student, q, teacher)}
        # where the teacher has a label: the miss is a wrong search, the same miss again a repeat
        assert reasons.get(0, "search") == "search" and reasons.get(1, "repeat") == "repeat"
        assert reasons.get(2, "early_answer") in ("early_answer", "wrong_answer")
        labelled += 0 in reasons and 1 in reasons
    assert labelled >= 5  # after its miss the teacher still knows a visible next search


def test_answers_early_late_and_wrong():
    both = [search("Rangers", "Rangers"), search("John Smith (coach)", "John Smith (coach)")]
    assert fixes([*both, answer("Boston Bruins")]) == [(2, "wrong_answer")]
    assert fixes([search("Rangers", "Rangers"), answer("John Smith")]) == [(1, "early_answer")]
    assert fixes([*both, search("Maple Leafs", "Rangers")], "step_limit") == [(2, "late_answer")]


def test_corrections_stop_at_an_unparsable_step():
    bad = Step("", None, None, "Invalid format", raw="I think Rangers", error="parse_error")
    assert fixes([bad, search("Rangers", "Rangers")], "step_limit") == [(0, "format")]


def test_convert_writes_on_policy_pairs(tmp_path, capsys):
    from araft import main

    questions = questions_file(tmp_path)
    student = tmp_path / "trajectories.jsonl"
    record: TrajectoryRecord = run([search("Rangers", "Rangers"), answer("John Smith")])
    student.write_text(json.dumps(record.to_dict()) + "\n")
    out = tmp_path / "dpo.jsonl"
    argv = ["convert", "dpo", str(student), "--out", str(out), "--prompt-style", "zeroshot_turns"]
    assert main([*argv, "--kinds", "on_policy", "--teacher", "oracle", "--questions", questions]) == 0
    assert "on_policy/early_answer 1" in capsys.readouterr().out
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["kind"], row["reason"], row["step"]) == ("on_policy", "early_answer", 1)
    assert row["prompt"][-1]["content"].startswith("Observation: The Rangers are a hockey club")
    assert "look up John Smith (coach)" in row["chosen"][0]["content"]
    assert "action_input: John Smith]" in row["rejected"][0]["content"]
    only = [*argv, "--force", "--kinds", "on_policy", "--teacher", "oracle", "--questions", questions, "--reasons"]
    before = out.read_text()
    assert main([*only, "wrong_answer,late_answer"]) == 2  # its one correction has another reason: no records
    assert "gave no dpo records" in capsys.readouterr().err and out.read_text() == before  # the old file stays
    assert main([*only, "early_answer"]) == 0 and "on_policy/early_answer 1" in capsys.readouterr().out
    assert main([*only, "early,late_answer"]) == 2
    assert "unknown --reasons early: choose from format," in capsys.readouterr().err
    kept = out.read_text()
    assert main([*argv, "--force", "--reasons", "early_answer"]) == 2  # the teacher's own kinds have no reasons
    assert "pass --kinds on_policy" in capsys.readouterr().err and out.read_text() == kept
    assert main([*argv, "--force", "--kinds", "on_policy,repeat_previous", "--questions", questions]) == 2
    assert "convert them separately" in capsys.readouterr().err
    assert main([*argv, "--force", "--kinds", "on_policy"]) == 2
    assert "pass --questions" in capsys.readouterr().err
