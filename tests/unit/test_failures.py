"""The failure taxonomy: one cause per failed run, read from its steps and the supporting pages."""

import pytest

from araft_lc.react.trajectory import Step, TrajectoryRecord
from evals.failures import CAUSES, answers_a_search, count_failures, failure_cause, failures_table, loops, reach
from evals.hotpotqa import Question
from evals.metrics import score

Q = Question(
    id="q1",
    question="Which team did the coach of the Rangers play for?",
    answer="Toronto Maple Leafs",
    type="bridge",
    level="hard",
    supporting_titles=("Rangers", "John Smith (coach)"),
    context={
        "Rangers": "The Rangers are a hockey club. Their coach is John Smith.",
        "John Smith (coach)": "John Smith (born 1950) played for the Toronto Maple Leafs.",
        "Rangers F.C.": "Rangers F.C. is a football club in Glasgow.",
    },
)
YES_NO = Question(
    id="q2",
    question="Are both clubs in Scotland?",
    answer="no",
    type="comparison",
    supporting_titles=("Rangers",),
    context=Q.context,
)


def search(query: str, page: str) -> Step:
    return Step("", "Wikipedia", query, Q.context[page], raw=f"search {query}")


def answer(text: str) -> Step:
    return Step("", "Answer", text, None, raw=f"answer {text}")


def questions_file(folder) -> str:
    """``Q`` as an official-format HotpotQA file in ``folder``."""
    import json

    path = folder / "questions.json"
    path.write_text(
        json.dumps(
            [
                {
                    "_id": Q.id,
                    "question": Q.question,
                    "answer": Q.answer,
                    "type": Q.type,
                    "level": Q.level,
                    "supporting_facts": [[t, 0] for t in Q.supporting_titles],
                    "context": [[t, [text]] for t, text in Q.context.items()],
                }
            ]
        )
    )
    return str(path)


def run(steps: list[Step], status: str = "answered", q: Question = Q) -> TrajectoryRecord:
    prediction = steps[-1].action_input if status == "answered" else None
    # scored as the recorder scores a run (evals.run_pool passes evals.metrics.score)
    scores = score(prediction, q.answer) if status == "answered" else {}
    return TrajectoryRecord(q.id, q.question, status, prediction, steps, gold_answer=q.answer, scores=scores)


def test_each_cause_is_told_apart():
    both = [search("Rangers", "Rangers"), search("John Smith", "John Smith (coach)")]
    assert failure_cause(run([*both, answer("Toronto Maple Leafs")]), Q) is None
    assert failure_cause(run([*both, answer("Boston Bruins")]), Q) == "wrong_answer"
    assert failure_cause(run([*both, answer("Maple Leafs")]), Q) == "answer_form"
    assert failure_cause(run([search("Rangers", "Rangers"), answer("John Smith")]), Q) == "bridge_missed"
    assert failure_cause(run([search("Rangers FC", "Rangers F.C."), answer("Glasgow")]), Q) == "first_search_wrong"
    assert failure_cause(run([answer("Rangers")], q=YES_NO), YES_NO) == "answer_form"  # a name for yes/no
    assert failure_cause(run([answer("yes")], q=YES_NO), YES_NO) == "first_search_wrong"  # never searched


def test_runs_without_an_answer():
    again = [search("Rangers", "Rangers"), search("Rangers", "Rangers")]
    assert failure_cause(run(again, "step_limit"), Q) == "repeat"
    assert failure_cause(run(again[:1], "step_limit"), Q) == "step_limit"
    bad = Step("", None, None, "could not parse", raw="gibberish", error="parse_error")
    assert failure_cause(run([again[0], bad], "parse_error"), Q) == "parse_error"
    assert failure_cause(run([bad], "time_limit"), Q) == "run_error"


def test_reach_and_the_table():
    right = run(
        [search("Rangers", "Rangers"), search("John Smith", "John Smith (coach)"), answer("Toronto Maple Leafs")]
    )
    wrong = run([search("Rangers FC", "Rangers F.C."), answer("Glasgow")])
    assert reach(right, Q).all_gold and reach(right, Q).answer_seen and not reach(wrong, Q).first_search_gold
    counts = count_failures("sft", [right, wrong, wrong], {Q.id: Q})
    assert (counts.runs, counts.failed, counts.causes["first_search_wrong"]) == (3, 2, 2)
    table = failures_table([counts])
    assert "| first search wrong |" in table and "| 2 (100%) |" in table and "2 of 3" in table
    assert "Searches: `Rangers FC`. Answer: Glasgow; gold: Toronto Maple Leafs." in table
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == len(CAUSES) + 2 + 6
    assert "| failed, answering with a title it searched | 0 (0%) |" in table


def test_a_wrong_answer_that_names_a_search_is_counted():
    named = run([search("Rangers", "Rangers"), search("John Smith", "John Smith (coach)"), answer("john smith")])
    assert answers_a_search(named) and not answers_a_search(run([search("Rangers", "Rangers"), answer("Glasgow")]))
    # a right answer that is a search is no failure, so it is not counted
    right = run([search("Toronto Maple Leafs", "John Smith (coach)"), answer("Toronto Maple Leafs")])
    counts = count_failures("sft", [named, right], {Q.id: Q})
    assert counts.reached["wrong_answer_searched"] == 1
    assert "| failed, answering with a title it searched | 1 (50%) |" in failures_table([counts])


def test_a_step_that_loops_is_told_from_other_parse_errors():
    # two steps as DPO adapters wrote them, cut at the token limit mid-word
    assert loops(
        "Thought: Rangers F.C. is a club. So the answer is Glasgow. So the answer is Glasgow. "
        "So the answer is Glasgow. So the answer is Gla"
    )
    assert loops(
        "Now I need to look up John F. Kennedy Jr. (brother of John F.) Jr. (brother of John F.) "
        "Jr. (brother of John F.) Jr. (bro"
    )
    assert not loops("Thought: I know the answer. Answer: Glasgow")  # no action, no loop
    assert not loops("So the answer is Glasgow. So the answer is Glasgow.")  # twice is not a loop
    assert loops("Thought: So the answer is no. So the answer is no. So the answer is no.\nAction: [action: No]")
    looping = Step("", None, None, "No action found.", raw="So it is. " * 5 + "So", error="parse_error")
    other = Step("", None, None, "No action found.", raw="gibberish", error="parse_error")
    counts = count_failures("dpo", [run([looping], status="step_limit"), run([other], status="step_limit")], {Q.id: Q})
    assert counts.causes["parse_error"] == 2 and counts.reached["parse_error_loop"] == 1
    assert "| failed on a parse error, writing in a loop (a sentence three times over) | 1 (50%) |" in failures_table(
        [counts]
    )


def test_a_run_over_other_questions_is_refused():
    with pytest.raises(ValueError, match="pass the --questions file the run used"):
        count_failures("sft", [run([answer("x")])], {})


def test_the_command(tmp_path, capsys):
    import json

    from araft import main

    questions = questions_file(tmp_path)
    folder = tmp_path / "sft"
    folder.mkdir()
    wrong = run([search("Rangers", "Rangers"), answer("John Smith")])
    (folder / "trajectories.jsonl").write_text(json.dumps(wrong.to_dict()) + "\n")
    assert main(["failures", str(folder), "--questions", questions, "--out", str(tmp_path / "f.md")]) == 0
    assert "| bridge entity missed |" in (tmp_path / "f.md").read_text()
    assert "1 of 1" in capsys.readouterr().out
    assert main(["failures", str(tmp_path), "--questions", questions]) == 2
    assert "holds no trajectories.jsonl" in capsys.readouterr().err
