"""finetune.records and finetune.tokens: golden files byte for byte, re-parsing, token budgets."""

import json
import os

import pytest
from helpers import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from araft import main
from araft_lc.react.parser import Action, Answer, parse
from araft_lc.react.trajectory import Step, TrajectoryRecord
from finetune.dataset import DataError, read_records
from finetune.records import DPO_KINDS, TRAINING_VERSION, dpo_records, failed_steps, record_format, sft_records
from finetune.tokens import record_length, sft_tokens

GOLDEN = ROOT / "tests" / "data" / "golden"
# name -> the convert arguments that make it (UPDATE_GOLDEN=1 rewrites the expected files)
CASES = {
    "sft_step": ["sft", "--prompt-style", "zeroshot"],
    "sft_text": ["sft", "--prompt-style", "zeroshot", "--format", "text"],
    "sft_trajectory": ["sft", "--prompt-style", "zeroshot_turns", "--granularity", "trajectory"],
    "dpo": [
        "dpo",
        "--prompt-style",
        "zeroshot",
        "--rejects",
        str(GOLDEN / "rejects.jsonl"),
        "--kinds",
        ",".join(DPO_KINDS),
    ],
}
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _records(name: str) -> list[TrajectoryRecord]:
    return [TrajectoryRecord.from_dict(json.loads(line)) for line in (GOLDEN / name).read_text().splitlines()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_records_byte_for_byte(case, tmp_path, capsys):
    kind, *options = CASES[case]
    out = tmp_path / f"{case}.jsonl"
    assert main(["convert", kind, str(GOLDEN / "trajectories.jsonl"), "--out", str(out), *options]) == 0
    expected = GOLDEN / f"expected_{case}.jsonl"
    if os.environ.get("UPDATE_GOLDEN") and out.read_bytes() != expected.read_bytes():
        expected.write_bytes(out.read_bytes())
        pytest.fail(f"rewrote {expected.name}: review its diff, then run again without UPDATE_GOLDEN")
    assert out.read_bytes() == expected.read_bytes()


def test_golden_counts_and_kinds():
    kept, rejects = _records("trajectories.jsonl"), _records("rejects.jsonl")
    assert [len(list(sft_records(r, prompt_style="zeroshot"))) for r in kept] == [3, 2, 0]  # g3 is malformed
    pairs = [
        d for r in kept for d in dpo_records(r, prompt_style="zeroshot", kinds=DPO_KINDS, failed=failed_steps(rejects))
    ]
    by_kind = {k: [(d["question_id"], d["step"]) for d in pairs if d["kind"] == k] for k in DPO_KINDS}
    assert by_kind == {
        "repeat_previous": [("g1", 1), ("g1", 2), ("g2", 1)],
        "answer_before_search": [("g1", 0), ("g2", 0)],
        "malformed_action": [("g1", 0), ("g1", 1), ("g1", 2), ("g2", 0), ("g2", 1)],
        # g1's failed run took the same first step, then searched again; g2's answered at once
        "failed_run": [("g1", 1), ("g2", 0)],
        # the answer step, answering with a title the run searched that is not the answer
        "wrong_answer": [("g1", 2), ("g2", 1)],
    }
    for d in pairs:
        assert d["chosen"] != d["rejected"]
        if d["kind"] == "malformed_action":
            assert isinstance(parse(d["rejected"][0]["content"], ["Wikipedia"]), Action) is False


def test_wrong_answer_pairs_answer_a_searched_title_or_the_other_of_yes_and_no():
    def run(answer, *queries, thought=None):
        steps = [Step(f"Look up {q}.", "Wikipedia", q, f"{q} is a page.", raw="") for q in queries]
        steps.append(Step(thought or f"So the answer is {answer}.", "Answer", answer, None, raw=""))
        record = TrajectoryRecord("q", "a question?", "answered", answer, steps, gold_answer=answer)
        return [d["rejected"][0]["content"] for d in dpo_records(record, kinds=["wrong_answer"])]

    # a bridge run: both searched titles are wrong answers; one that shares a word with the answer
    # ("President Bill Clinton" for "Bill Clinton") is no wrong answer, and a search repeated once
    assert run("Pimp My Ride", "Likwit Crew", "King T", "king t") == [
        "Thought: So the answer is Likwit Crew.\nAction: [action: Answer, action_input: Likwit Crew]",
        "Thought: So the answer is King T.\nAction: [action: Answer, action_input: King T]",
    ]
    assert run("Bill Clinton", "President Bill Clinton") == []
    # a comparison: the entity that is not the answer
    assert run("Liberty", "Liberty", "MIT Technology Review") == [
        "Thought: So the answer is MIT Technology Review.\n"
        "Action: [action: Answer, action_input: MIT Technology Review]"
    ]
    # yes/no: the other one, whatever was searched; a thought that does not name the answer is kept
    assert run("no", "Der Rosenkavalier", thought="One is a comedy, the other a tragedy.") == [
        "Thought: One is a comedy, the other a tragedy.\nAction: [action: Answer, action_input: yes]"
    ]
    # only a run's answer step has them
    assert run("Paris") == []


def test_trajectory_granularity_needs_the_turns_layout():
    record = _records("trajectories.jsonl")[0]
    with pytest.raises(ValueError, match="zeroshot_turns"):
        list(sft_records(record, prompt_style="zeroshot", granularity="trajectory"))


# what the parser keeps of a field (steps are parsed model output): printable text with single
# spaces, no brackets, no surrounding quotes
_text = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="[]"), min_size=1, max_size=30
    )
    .map(lambda s: " ".join(s.split()).strip('"').strip())
    .filter(bool)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_text, _text, _text), min_size=0, max_size=4), _text, _text)
def test_every_record_reparses_to_its_step(searches, answer, thought):
    steps = [Step(t, "Wikipedia", q, obs, raw="") for t, q, obs in searches]
    steps.append(Step(thought, "Answer", answer, None, raw=""))
    record = TrajectoryRecord("q", "a question?", "answered", answer, steps, gold_answer=answer)

    def expected(step):
        if step.action == "Answer":
            return Answer(step.action_input, step.thought)
        return Action(step.action, step.action_input, step.thought)

    for row in sft_records(record, prompt_style="zeroshot"):
        assert parse(row["completion"][0]["content"], ["Wikipedia"]) == expected(steps[row["step"]])
    for row in dpo_records(record, prompt_style="zeroshot"):
        assert parse(row["chosen"][0]["content"], ["Wikipedia"]) == expected(steps[row["step"]])
    (whole,) = sft_records(record, prompt_style="zeroshot_turns", granularity="trajectory")
    assistant = [m["content"] for m in whole["messages"] if m["role"] == "assistant"]
    assert [parse(a, ["Wikipedia"]) for a in assistant] == [expected(s) for s in steps]


@pytest.fixture(scope="module")
def tokenizers(tiny_llama):
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(tiny_llama)
    chatml = AutoTokenizer.from_pretrained(tiny_llama)
    chatml.chat_template = CHATML
    return {"llama2": plain, "chatml": chatml}


@pytest.mark.parametrize("fmt", ["llama2", "chatml"])
def test_loss_mask_covers_exactly_the_steps(tokenizers, fmt):
    tokenizer = tokenizers[fmt]
    record = _records("trajectories.jsonl")[0]
    step_rows = list(sft_records(record, prompt_style="zeroshot_turns"))
    (whole,) = sft_records(record, prompt_style="zeroshot_turns", granularity="trajectory")

    def trained(row):
        tokens = sft_tokens(tokenizer, row)
        return [i for i, m in zip(tokens["input_ids"], tokens["assistant_masks"], strict=True) if m]

    per_step = [trained(r) for r in step_rows]
    # the same supervision: the trajectory record trains exactly the steps' completions ...
    assert trained(whole) == [i for ids in per_step for i in ids]
    end = "</s>" if fmt == "llama2" else "<|im_end|>"
    for row, ids in zip(step_rows, per_step, strict=True):
        text = tokenizer.decode(ids)
        # ... each the step's text and the end of the turn, and nothing of the prompt
        assert text.strip().startswith(row["completion"][0]["content"]) and text.rstrip().endswith(end)
    # ... for far fewer tokens than the step records together
    assert len(sft_tokens(tokenizer, whole)["input_ids"]) < sum(
        len(sft_tokens(tokenizer, r)["input_ids"]) for r in step_rows
    )


def test_prompt_tokens_are_what_inference_sees(tokenizers, tiny_llama):
    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.react.prompt import load_prompt, render_messages
    from araft_lc.wiki.wikipedia import WikipediaTool

    record = _records("trajectories.jsonl")[0]
    row = list(sft_records(record, prompt_style="zeroshot"))[2]
    model = AraftChatModel(model_id=str(tiny_llama))
    messages = render_messages(
        load_prompt("zeroshot"), [WikipediaTool(backend=None)], record.question, record.steps[:2]
    )
    prompt_ids = model.tokenizer(model.prompt_text(messages), add_special_tokens=False)["input_ids"]
    tokens = sft_tokens(model.tokenizer, row)
    n = tokens["assistant_masks"].index(1)
    assert tokens["input_ids"][:n] == prompt_ids
    assert tokens["input_ids"].count(model.tokenizer.bos_token_id) == 1


def test_record_format_names_what_it_sees():
    assert record_format({"prompt": [], "chosen": [], "rejected": []}) == "dpo"
    assert record_format({"prompt": [], "completion": []}) == "prompt_completion"
    with pytest.raises(ValueError, match="not a training record: has question"):
        record_format({"question": "?"})


@pytest.mark.parametrize("name, stage", [("expected_sft_step.jsonl", "sft"), ("expected_dpo.jsonl", "dpo")])
def test_training_records_check_their_version(name, stage, tmp_path):
    rows, _ = read_records(str(GOLDEN / name), stage)
    assert rows and all(row["version"] == TRAINING_VERSION for row in rows)
    old = {k: v for k, v in rows[0].items() if k != "version"}  # written before versions: version 1
    path = tmp_path / name
    path.write_text(json.dumps(old) + "\n")
    assert read_records(str(path), stage)[0] == [old]
    newer = {**rows[0], "version": TRAINING_VERSION + 1}
    path.write_text("\n".join(json.dumps(r) for r in [old, newer]) + "\n")
    with pytest.raises(
        DataError,
        match=rf"{name}:2: a training record of version {TRAINING_VERSION + 1}, but this "
        "araft reads versions 1 to 1: upgrade araft, or convert the file again",
    ):
        read_records(str(path), stage)


def test_convert_drops_records_over_the_token_budget(tiny_llama, tokenizers, tmp_path, capsys):
    source = GOLDEN / "trajectories.jsonl"
    lengths = sorted(
        record_length(tokenizers["llama2"], r)
        for t in _records("trajectories.jsonl")
        for r in sft_records(t, prompt_style="zeroshot")
    )
    budget = lengths[2]
    out = tmp_path / "sft.jsonl"
    assert (
        main(
            [
                "convert",
                "sft",
                str(source),
                "--out",
                str(out),
                "--prompt-style",
                "zeroshot",
                "--tokenizer",
                str(tiny_llama),
                "--max-tokens",
                str(budget),
            ]
        )
        == 0
    )
    kept = sum(1 for n in lengths if n <= budget)
    assert len(out.read_text().splitlines()) == kept
    printed = capsys.readouterr().out
    assert f"tokens: {sum(lengths)} in all, longest record {lengths[-1]}" in printed
    assert f"dropped {len(lengths) - kept} over --max-tokens {budget}" in printed


def test_convert_reads_several_files_and_leaves_out_what_is_already_written(tmp_path, capsys):
    source = GOLDEN / "trajectories.jsonl"
    once, twice = tmp_path / "once.jsonl", tmp_path / "twice.jsonl"
    flags = ["--prompt-style", "zeroshot_turns", "--granularity", "trajectory"]
    assert main(["convert", "sft", str(source), "--out", str(once), *flags]) == 0
    n = len(once.read_text().splitlines())
    assert "exact duplicates" not in capsys.readouterr().out
    assert main(["convert", "sft", str(source), str(source), "--out", str(twice), *flags]) == 0
    assert twice.read_text() == once.read_text()
    assert (
        f"from {2 * len(_records('trajectories.jsonl'))} trajectories; {n} exact duplicates left out"
        in capsys.readouterr().out
    )
    missing = tmp_path / "missing.jsonl"
    assert main(["convert", "sft", str(source), str(missing), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "missing.jsonl does not exist: run `araft generate` first" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_convert_errors_are_one_line(tmp_path, capsys):
    source = GOLDEN / "trajectories.jsonl"
    out = tmp_path / "x.jsonl"
    assert main(["convert", "sft", str(source), "--out", str(out), "--max-tokens", "9"]) == 2
    assert "--tokenizer" in capsys.readouterr().err
    assert main(["convert", "sft", str(source), "--out", str(out), "--granularity", "trajectory"]) == 2
    assert "zeroshot_turns" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "x.jsonl.tmp").exists()
    assert main(["convert", "dpo", str(source), "--out", str(out), "--kinds", "nope"]) == 2
    assert "unknown DPO kind 'nope'" in capsys.readouterr().err


def test_self_contrast_sets_an_exact_run_s_step_against_a_failed_run_s_where_they_part():
    from test_failures import Q, answer, run, search

    from araft_lc.react.trajectory import Step
    from finetune.records import contrast_records

    both = [search("Rangers", "Rangers"), search("John Smith (coach)", "John Smith (coach)")]
    exact = run([*both, answer("Toronto Maple Leafs")])
    bad_parse = Step("", None, None, "Invalid format", raw="I think Rangers", error="parse_error")
    failed = {
        "early_answer": run([both[0], answer("John Smith")]),
        "wrong_answer": run([*both, answer("Boston Bruins")]),
        "search": run([search("Rangers FC", "Rangers F.C."), answer("Glasgow")]),
        "repeat": run([both[0], both[0], both[0], both[0], both[0]], "step_limit"),
        "format": run([both[0], bad_parse], "parse_error"),
    }
    no_pair = [
        run([*both, answer("Maple Leafs")]),  # F1 0.8: neither exact nor failed
        run(
            [Step("The club first.", "Wikipedia", "rangers", Q.context["Rangers"], raw=""), answer("Glasgow")]
        ),  # parts by chance
        run([both[0], answer("Glasgow")], "tool_error"),  # the world's failure, not the model's
    ]
    pairs = list(contrast_records([exact, *no_pair, *failed.values()], prompt_style="zeroshot_turns"))
    assert [(p["reason"], p["step"]) for p in pairs] == [
        ("early_answer", 1),
        ("wrong_answer", 2),
        ("search", 0),
        ("repeat", 1),
        ("format", 1),
    ]
    by_reason = {p["reason"]: p for p in pairs}
    early = by_reason["early_answer"]
    assert early["kind"] == "self_contrast" and early["question_id"] == exact.question_id
    assert early["prompt"] == exact.to_messages("zeroshot_turns", upto=1)  # the state both runs reached
    assert early["prompt"][-1]["content"].startswith("Observation: The Rangers are a hockey club")
    assert "action_input: John Smith (coach)]" in early["chosen"][0]["content"]
    assert "[action: Answer, action_input: John Smith]" in early["rejected"][0]["content"]
    assert by_reason["format"]["rejected"][0]["content"] == "I think Rangers"
    # no exact run, or no failed one: nothing to contrast
    assert list(contrast_records(failed.values())) == [] and list(contrast_records([exact, exact])) == []


def test_convert_writes_self_contrast_pairs_from_several_files(tmp_path, capsys):
    from test_failures import answer, run, search

    first = search("Rangers", "Rangers")
    runs = [
        run([first, search("John Smith (coach)", "John Smith (coach)"), answer("Toronto Maple Leafs")]),
        run([first, answer("John Smith")]),
    ]
    files = []
    for i, record in enumerate(runs):  # a greedy run and a sampled one, as eval writes them
        files.append(tmp_path / f"run{i}.jsonl")
        files[-1].write_text(json.dumps(record.to_dict()) + "\n")
    out = tmp_path / "dpo.jsonl"
    argv = ["convert", "dpo", *map(str, files), "--out", str(out), "--prompt-style", "zeroshot_turns"]
    assert main([*argv, "--kinds", "self_contrast"]) == 0
    assert "1 dpo records (self_contrast/early_answer 1) from 2 trajectories" in capsys.readouterr().out
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["kind"], row["step"]) == ("self_contrast", 1)
    assert main([*argv, "--force", "--kinds", "self_contrast,repeat_previous"]) == 2
    assert "convert them separately" in capsys.readouterr().err
    assert main([*argv[:3], *argv[4:], "--force", "--kinds", "self_contrast"]) == 2  # the exact run alone
    assert "gave no dpo records" in capsys.readouterr().err and out.read_text().count("\n") == 1


def _calculator_run(scripted, wiki, with_wikipedia: bool) -> TrajectoryRecord:
    """A run of an agent whose tools are a Calculator (and the Wikipedia tool), as recorded."""
    from helpers import act, answer
    from langchain_core.tools import tool

    from araft_lc.agent.graph import create_araft_agent
    from araft_lc.agent.recorder import TrajectoryRecorder

    @tool
    def Calculator(expression: str) -> str:
        """Evaluate an arithmetic expression such as 12 * 7."""
        left, op, right = expression.split()
        return str({"*": int(left) * int(right), "+": int(left) + int(right)}[op])

    tools = [Calculator, wiki] if with_wikipedia else [Calculator]
    agent = create_araft_agent(
        scripted(script=[act("Calculator", "12 * 7"), answer("84")]), tools, prompt="zeroshot_turns"
    )
    recorder = TrajectoryRecorder()
    agent.invoke(
        {"question": "What is 12 times 7?"},
        {"callbacks": [recorder], "metadata": {"question_id": f"calc-{with_wikipedia}"}},
    )
    [record] = recorder.records
    return record


def test_a_record_keeps_its_tools_and_converts_to_prompts_that_list_them(scripted, wiki, tmp_path, capsys):
    calc = _calculator_run(scripted, wiki, with_wikipedia=False)
    both = _calculator_run(scripted, wiki, with_wikipedia=True)
    assert calc.version == 2 and [t["name"] for t in calc.tools] == ["Calculator"]
    assert [t["name"] for t in both.tools] == ["Calculator", "Wikipedia"]
    assert calc.steps[0].observation == "84"
    # what the teacher saw is what the record renders
    seen = calc.calls[0]["messages"][0]["content"]
    assert "Calculator" in seen and "Wikipedia" not in seen
    assert calc.to_messages("zeroshot_turns", upto=0)[0]["content"] == seen
    golden = _records("trajectories.jsonl")[0]  # a version 1 record: the Wikipedia tool
    source, out = tmp_path / "mixed.jsonl", tmp_path / "sft.jsonl"
    source.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in (calc, golden, both)))
    assert (
        main(
            [
                "convert",
                "sft",
                str(source),
                "--out",
                str(out),
                "--prompt-style",
                "zeroshot_turns",
                "--granularity",
                "trajectory",
            ]
        )
        == 0
    )
    systems = [json.loads(line)["messages"][0]["content"] for line in out.read_text().splitlines()]
    assert len(systems) == 3
    assert "Calculator" in systems[0] and "Wikipedia" not in systems[0]
    assert "Wikipedia" in systems[1] and "Calculator" not in systems[1]
    assert "Calculator" in systems[2] and "Wikipedia" in systems[2]


def test_a_record_that_calls_a_tool_it_does_not_list_is_refused_in_one_line(scripted, wiki, tmp_path, capsys):
    calc = _calculator_run(scripted, wiki, with_wikipedia=False).to_dict()
    old = {**calc, "version": 1, "tools": []}  # as recorded before records kept their tools
    source, out = tmp_path / "old.jsonl", tmp_path / "sft.jsonl"
    source.write_text(json.dumps(old) + "\n" + (GOLDEN / "trajectories.jsonl").read_text())
    for kind in ("sft", "dpo"):
        assert main(["convert", kind, str(source), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "record calc-False calls tool 'Calculator'" in err and "(Wikipedia)" in err
    assert not out.exists()
    assert main(["convert", "sft", str(source), "--out", str(out), "--skip-bad"]) == 0
    assert "skipped 1 records whose steps call tools they do not list" in capsys.readouterr().err
    assert "Calculator" not in out.read_text()


def test_a_step_that_named_no_tool_is_the_models_mistake_and_converts(scripted, wiki, tmp_path):
    from helpers import act, answer

    from araft_lc.agent.graph import create_araft_agent
    from araft_lc.agent.recorder import TrajectoryRecorder

    agent = create_araft_agent(scripted(script=[act("Search", "Penn"), answer("William Penn")]), [wiki])
    recorder = TrajectoryRecorder()
    agent.invoke({"question": "Who founded Philadelphia?"}, {"callbacks": [recorder]})
    [record] = recorder.records
    assert record.steps[0].observation.startswith("There is no tool named Search.")
    assert record.unlisted_tool() is None
