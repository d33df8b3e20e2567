"""Recorder, oracle teacher, resumable generation and SFT/DPO records, end to end."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT
from langchain_core.tools import tool

from araft_lc.agent.graph import create_araft_agent
from araft_lc.agent.recorder import TrajectoryRecorder
from araft_lc.react.parser import Action, Answer, parse
from araft_lc.react.trajectory import TrajectoryRecord
from araft_lc.storage.jsonl_sink import JsonlSink, read_ids, repair_tail
from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool
from evals.generate import generate, rejects_path
from evals.hotpotqa import load_questions
from evals.metrics import score
from evals.oracle import OracleChatModel, evidence_sentence, first_sentence, search_order
from finetune.records import dpo_records, sft_records


@pytest.fixture(scope="module")
def dev(data_dir):
    return list(load_questions(data_dir / "dev_distractor_b300.jsonl"))


@pytest.fixture(scope="module")
def oracle_agent(dev, corpus_index):
    return create_araft_agent(OracleChatModel(dev), [WikipediaTool(backend=LocalWikipedia(corpus_index))])


def test_recorder_on_a_concurrent_batch_of_8(dev, oracle_agent):
    recorder = TrajectoryRecorder(score=score)
    questions = dev[:8]
    configs = [{"callbacks": [recorder], "metadata": {"question_id": q.id, "gold_answer": q.answer}} for q in questions]
    oracle_agent.batch([{"question": q.question} for q in questions], configs, max_concurrency=8)
    by_id = {r.question_id: r for r in recorder.records}
    assert sorted(by_id) == sorted(q.id for q in questions)
    for q in questions:
        r = by_id[q.id]
        assert r.question == q.question and r.gold_answer == q.answer
        assert r.status == "answered" and r.scores == {"em": 1.0, "f1": 1.0}
        assert len(r.calls) == len(r.steps)
        # Every call's prompt is this question's, and its output is this step's raw text.
        for call, step in zip(r.calls, r.steps, strict=True):
            assert call["messages"][1]["content"].startswith(f"Question: {q.question}")
            assert call["output"].startswith(step.raw.rstrip())


def test_oracle_search_order_and_honest_failure(dev, corpus_index):
    comparison = next(q for q in dev if q.type == "comparison")
    assert set(search_order(comparison)) == set(comparison.supporting_titles)

    @tool
    def Wikipedia(query: str) -> str:
        """returns nothing useful"""
        return "Could not find it."

    q = dev[0]
    result = create_araft_agent(OracleChatModel([q]), [Wikipedia]).invoke({"question": q.question})
    assert result["answer"] == "unknown"


@pytest.mark.parametrize(
    "text, first",
    [
        (
            "Poleconomy is a board game invented by New Zealander Bruce E. Wilson. It was sold in 1982.",
            "Poleconomy is a board game invented by New Zealander Bruce E. Wilson.",
        ),
        (
            "Hook and Ladder No. 4 is a firehouse in Albany. It was built in 1910.",
            "Hook and Ladder No. 4 is a firehouse in Albany.",
        ),
        (
            "The House is part of the U.S. state's legislature. It has 134 members.",
            "The House is part of the U.S. state's legislature.",
        ),
        ("Papa Gino's, Inc. is a restaurant chain. It is based in Dedham.", "Papa Gino's, Inc. is a restaurant chain."),
        ("Roe v. Wade was decided in 1973. It was overturned.", "Roe v. Wade was decided in 1973."),
        ('He said "Stop." Then he left.', 'He said "Stop."'),
        ("It was built in 1910. 1920 saw a fire.", "It was built in 1910."),
        ("It runs on. and on", "It runs on. and on"),
        ("no end at all", "no end at all"),
        (". A text that starts with a period.", "."),  # as the split before: no word before it, no crash
        ("word " * 40, "word " * 23 + "word ..."),
    ],
)
def test_the_teachers_first_sentence_is_not_cut_at_an_abbreviation(text, first):
    assert first_sentence(text) == first


PAGE = (
    "Liberty is a magazine published by the Seventh-day Adventist Church. It has a circulation of over "
    "200,000. Its editor is Lincoln E. Steed."
)


@pytest.mark.parametrize(
    "names, known, quoted",
    [
        (["Lincoln E. Steed"], "Liberty", "Its editor is Lincoln E. Steed."),  # it names the next page
        (["Lincoln E. Steed (editor)"], "Liberty", "Its editor is Lincoln E. Steed."),  # a title's aside left out
        (["Steed Lincoln"], "Liberty", "It has a circulation of over 200,000."),  # not named: the closest
        ([], "Liberty", "It has a circulation of over 200,000."),  # a comparison: closest to the question
        # nothing beyond the search's words in common with the question: the first sentence
        (
            [],
            "Liberty circulation over 200,000",
            "Liberty is a magazine published by the Seventh-day Adventist Church.",
        ),
    ],
)
def test_the_evidence_sentence_names_what_comes_next_or_is_closest_to_the_question(names, known, quoted):
    question = "Which has a circulation of over 200,000, Liberty or MIT Technology Review?"
    assert evidence_sentence(PAGE, question, names, known=known) == quoted


def test_the_evidence_sentence_of_a_text_without_sentences_is_the_text_cut():
    assert evidence_sentence("", "a question?") == ""
    assert evidence_sentence("word " * 60, "a question?") == "word " * 39 + "word ..."


def test_oracle_reads_a_comparison_in_either_order_and_a_bridge_in_one(dev, corpus_index):
    comparison = next(q for q in dev if q.type == "comparison" and len(search_order(q)) == 2)
    bridge = next(q for q in dev if q.type == "bridge")
    assert search_order(comparison, reverse_comparison=True) == search_order(comparison)[::-1]
    assert search_order(bridge, reverse_comparison=True) == search_order(bridge)
    agent = create_araft_agent(
        OracleChatModel([comparison], reverse_comparison=True), [WikipediaTool(backend=LocalWikipedia(corpus_index))]
    )
    result = agent.invoke({"question": comparison.question})
    assert result["answer"] == comparison.answer
    assert [s["action_input"] for s in result["steps"][:2]] == search_order(comparison)[::-1]


@pytest.mark.parametrize("prompt", ["fewshot", "zeroshot_turns"])
def test_oracle_answers_in_either_layout(dev, corpus_index, prompt):
    agent = create_araft_agent(
        OracleChatModel(dev[:5]), [WikipediaTool(backend=LocalWikipedia(corpus_index))], prompt=prompt
    )
    for q in dev[:5]:
        result = agent.invoke({"question": q.question})
        assert result["answer"] == q.answer and len(result["steps"]) == len(search_order(q)) + 1


def test_generate_keeps_correct_runs_and_resumes(dev, oracle_agent, tmp_path):
    out = tmp_path / "traj.jsonl"
    first = generate(oracle_agent, dev[:10], out, concurrency=4, progress=False)
    assert (first.tried, first.kept) == (10, 10)
    second = generate(oracle_agent, dev[:20], out, concurrency=4, progress=False)
    assert (second.skipped, second.tried) == (10, 10)
    ids = [json.loads(line)["question_id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(q.id for q in dev[:20]) and len(set(ids)) == 20


def test_failing_teacher_is_retried_then_recorded_as_error(dev, scripted, mini_index, tmp_path):
    model = scripted(script=["x"], fail_on_call=0)
    agent = create_araft_agent(model, [WikipediaTool(backend=LocalWikipedia(mini_index))])
    summary = generate(agent, dev[:1], tmp_path / "t.jsonl", retries=0, progress=False)
    assert summary.errors == 1
    (line,) = rejects_path(tmp_path / "t.jsonl").read_text().splitlines()
    assert json.loads(line)["status"] == "error" and "model server went away" in json.loads(line)["error"]


def test_torn_line_is_repaired(tmp_path):
    path = tmp_path / "x.jsonl"
    with JsonlSink(path) as sink:
        sink.write({"question_id": "a"})
    with open(path, "a") as f:
        f.write('{"question_id": "b", "tru')
    assert repair_tail(path) > 0
    assert read_ids(path) == {"a"}


def test_kill_9_then_resume_loses_and_doubles_nothing(data_dir, tmp_path):
    out = tmp_path / "traj.jsonl"
    argv = [
        sys.executable,
        "-m",
        "araft",
        "generate",
        "--questions",
        str(data_dir / "dev_distractor_b300.jsonl"),
        "--teacher",
        "oracle",
        "--corpus",
        str(data_dir / "wiki_corpus.jsonl.gz"),
        "--out",
        str(out),
        "--concurrency",
        "4",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the kill: nothing was tested"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    # the kill landed mid-run: some records written, not all (a torn last line is the resume's to repair)
    assert 0 < out.read_bytes().count(b"\n") < 300
    subprocess.run(argv, cwd=tmp_path, env=env, check=True, capture_output=True)
    ids = [json.loads(line)["question_id"] for line in out.read_text().splitlines()]
    ids += [json.loads(line)["question_id"] for line in rejects_path(out).read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 300


def test_sft_and_dpo_records_reparse_to_their_steps(dev, oracle_agent):
    recorder = TrajectoryRecorder()
    q = dev[0]
    oracle_agent.invoke(
        {"question": q.question}, {"callbacks": [recorder], "metadata": {"question_id": q.id, "gold_answer": q.answer}}
    )
    record = TrajectoryRecord.from_dict(json.loads(json.dumps(recorder.records[0].to_dict())))
    sft = list(sft_records(record, prompt_style="zeroshot"))
    assert len(sft) == len(record.steps)
    for row, step in zip(sft, record.steps, strict=True):
        parsed = parse(row["completion"][0]["content"], ["Wikipedia"])
        expected = (
            Answer(step.action_input, step.thought)
            if step.action == "Answer"
            else Action(step.action, step.action_input, step.thought)
        )
        assert parsed == expected
        assert row["prompt"][1]["content"].count("Observation:") == row["step"]
    text = list(sft_records(record, fmt="text"))[0]["text"]
    assert text.startswith("<s>[INST] <<SYS>>") and text.count("<s>") == 1 and text.endswith(" </s>")
    dpo = list(dpo_records(record))
    assert [d["kind"] for d in dpo] == ["answer_before_search"] + ["repeat_previous"] * (len(record.steps) - 1)
    for d in dpo[1:]:
        assert d["rejected"][0]["content"] == sft[d["step"] - 1]["completion"][0]["content"]
        assert d["chosen"] != d["rejected"]


def test_records_load_in_datasets(dev, oracle_agent, tmp_path):
    datasets = pytest.importorskip("datasets")
    recorder = TrajectoryRecorder()
    oracle_agent.batch([{"question": q.question} for q in dev[:3]], {"callbacks": [recorder]})
    path = tmp_path / "dpo.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for r in recorder.records for d in dpo_records(r)))
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
