"""Run settings (araft_lc/agent/settings.py, evals/settings.py): one dataclass behind the flags of
``ask``, ``generate`` and ``eval``, ``--config FILE.yaml`` under the flags given, the resolved
settings saved beside the outputs, and resuming refused under other settings. The commands run
for real, with the oracle teacher over the mini corpus (no ML stack)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import pytest
import yaml

from araft import build_parser, main
from araft_lc.agent.settings import RunSettings, settings_from_args
from araft_lc.chat.presets import DEFAULT_MODEL
from araft_lc.react.bounds import MAX_NEW_TOKENS
from araft_lc.storage.config_file import ConfigError
from evals.settings import EvalSettings, GenerateSettings

PAGES = {
    "Arthur's Magazine": ["Arthur's Magazine was a literary periodical published in Philadelphia from 1844 to 1846."],
    "First for Women": [
        "First for Women is a women's magazine published in the United States.",
        " It was started in 1989.",
    ],
    "Philadelphia": ["Philadelphia is the largest city in Pennsylvania.", " It was founded in 1682 by William Penn."],
}
QUESTIONS = [
    (
        "q1",
        "Which magazine was started first, Arthur's Magazine or First for Women?",
        "Arthur's Magazine",
        [["Arthur's Magazine", 0], ["First for Women", 1]],
    ),
    (
        "q2",
        "Who founded the city where Arthur's Magazine was published?",
        "William Penn",
        [["Arthur's Magazine", 0], ["Philadelphia", 1]],
    ),
    (
        "q3",
        "In which state is the city where Arthur's Magazine was published?",
        "Pennsylvania",
        [["Arthur's Magazine", 0], ["Philadelphia", 0]],
    ),
]


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "_id": qid,
                    "question": q,
                    "answer": a,
                    "level": "hard",
                    "type": "bridge",
                    "supporting_facts": facts,
                    "context": [[t, s] for t, s in PAGES.items()],
                }
            )
            + "\n"
            for qid, q, a, facts in QUESTIONS
        )
    )
    return path


def _runs(path):
    """What a run computed, without its timings."""
    return [
        (r["question_id"], r["status"], r["prediction"], [s["raw"] for s in r["steps"]])
        for r in map(json.loads, path.read_text().splitlines())
    ]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_ask_generate_and_eval_share_each_setting_and_its_one_default(monkeypatch):
    monkeypatch.delenv("ARAFT_MODEL", raising=False)
    parser = build_parser()
    parsed = {
        "ask": parser.parse_args(["ask", "q?"]),
        "eval": parser.parse_args(["eval"]),
        "generate": parser.parse_args(["generate"]),
    }
    defaults = asdict(RunSettings())
    assert defaults["model"] == DEFAULT_MODEL and defaults["max_new_tokens"] == MAX_NEW_TOKENS
    assert defaults["seed"] == 0 and defaults["temperature"] == 0.0 and defaults["load_in_4bit"] is None
    for command, args in parsed.items():
        assert {key: getattr(args, key) for key in defaults} == defaults, command
    for cls in (RunSettings, GenerateSettings, EvalSettings):
        assert all(f.metadata["help"] for f in fields(cls)), cls


def test_araft_model_applies_to_all_three(monkeypatch):
    monkeypatch.setenv("ARAFT_MODEL", "araft-dpo")
    parser = build_parser()
    for cls, argv in (
        (RunSettings, ["ask", "q?"]),
        (GenerateSettings, ["generate", "--questions", "q", "--out", "o"]),
        (EvalSettings, ["eval", "--questions", "q", "--out", "o"]),
    ):
        assert settings_from_args(cls, parser.parse_args(argv)).model == "araft-dpo"


def test_the_command_line_overrides_the_file_even_with_a_default(tmp_path, monkeypatch):
    monkeypatch.setenv("ARAFT_MODEL", "araft-dpo")
    config = tmp_path / "c.yaml"
    config.write_text(
        "model: smollm2-135m\ntemperature: 0.7\nmax_steps: 2\nquestions: [a.jsonl]\nout: run\n"
        "load_in_4bit: true\nrepetition_guard: true\n"
    )
    args = build_parser().parse_args(
        ["eval", "--config", str(config), "--temperature", "0", "--no-4bit", "--max-new-tokens", "64"]
    )
    settings = settings_from_args(EvalSettings, args)
    assert (settings.model, settings.temperature, settings.max_steps, settings.load_in_4bit) == (
        "smollm2-135m",
        0.0,
        2,
        False,
    )  # the file over $ARAFT_MODEL; the flags over the file
    assert settings.max_new_tokens == 64 and settings.repetition_guard and settings.questions == ["a.jsonl"]
    # nothing is written back: the namespace stays argparse's, the settings alone hold the run's values
    assert getattr(args, "max_steps", None) != 2 and getattr(args, "model", None) != "smollm2-135m"


def test_eval_saves_its_settings_and_config_on_them_reproduces_the_run(questions, mini_index, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        main(
            [
                "eval",
                "--questions",
                str(questions),
                "--model",
                "oracle",
                "--corpus",
                str(mini_index),
                "--prompt",
                "zeroshot",
                "--max-steps",
                "4",
                "--limit",
                "2",
                "--out",
                str(first),
            ]
        )
        == 0
    )
    saved = yaml.safe_load((first / "settings.yaml").read_text())
    assert saved == {
        **asdict(EvalSettings()),
        "model": "oracle",
        "corpus": str(mini_index),
        "prompt": "zeroshot",
        "max_steps": 4,
        "limit": 2,
        "questions": [str(questions)],
        "out": str(first),
    }
    assert main(["eval", "--config", str(first / "settings.yaml"), "--out", str(second)]) == 0
    assert _runs(second / "trajectories.jsonl") == _runs(first / "trajectories.jsonl")
    gold = {qid: answer for qid, _, answer, _ in QUESTIONS}
    runs = _runs(first / "trajectories.jsonl")
    assert len(runs) == 2 and all(
        status == "answered" and prediction == gold[qid] for qid, status, prediction, _ in runs
    )
    assert yaml.safe_load((second / "settings.yaml").read_text()) == {**saved, "out": str(second)}
    capsys.readouterr()
    assert main(["eval", "--config", str(first / "settings.yaml")]) == 0  # the same folder: all done
    assert "tried 0, skipped 2 already done" in capsys.readouterr().out


def test_a_resumed_eval_may_grow_its_sample_but_not_change_how_it_runs(questions, mini_index, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["eval", "--questions", str(questions), "--model", "oracle", "--corpus", str(mini_index), "--out", str(out)]
    assert main([*argv, "--limit", "1"]) == 0
    before = (out / "trajectories.jsonl").read_text()
    capsys.readouterr()
    assert main([*argv, "--limit", "1", "--temperature", "0.5", "--max-steps", "3"]) == 2
    err = _err_line(capsys)
    assert err.startswith(f"araft: error: {out / 'settings.yaml'} holds the settings this output was started with")
    assert "max_steps 5 there, 3 now" in err and "temperature 0.0 there, 0.5 now" in err
    assert f"resume with --config {out / 'settings.yaml'}, or choose another --out" in err
    assert (out / "trajectories.jsonl").read_text() == before
    assert main([*argv, "--limit", "3", "--concurrency", "2"]) == 0  # more questions, more at once: resumed
    assert "tried 2, skipped 1 already done" in capsys.readouterr().out
    assert yaml.safe_load((out / "settings.yaml").read_text())["limit"] == 3


def test_generate_saves_its_settings_beside_its_output(questions, mini_index, tmp_path, capsys):
    out = tmp_path / "teacher.jsonl"
    assert (
        main(
            [
                "generate",
                "--questions",
                str(questions),
                "--teacher",
                "oracle",
                "--corpus",
                str(mini_index),
                "--prompt",
                "zeroshot",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    path = tmp_path / "teacher.settings.yaml"
    saved = yaml.safe_load(path.read_text())
    assert saved["model"] == "oracle" and saved["out"] == str(out) and saved["min_f1"] is None
    again = tmp_path / "again.jsonl"
    assert main(["generate", "--config", str(path), "--out", str(again)]) == 0
    assert _runs(again) == _runs(out)
    capsys.readouterr()
    assert main(["generate", "--config", str(path), "--min-f1", "0.5"]) == 2
    assert "min_f1 None there, 0.5 now" in _err_line(capsys)


def test_generate_reversed_reads_each_comparison_question_in_the_other_order(questions, mini_index, tmp_path, capsys):
    rows = [json.loads(line) for line in questions.read_text().splitlines()]
    rows[0]["type"] = "comparison"  # q1 compares two magazines
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "reversed.jsonl"
    flags = [
        "generate",
        "--questions",
        str(questions),
        "--teacher",
        "oracle",
        "--corpus",
        str(mini_index),
        "--prompt",
        "zeroshot",
    ]
    assert main([*flags, "--order", "reversed", "--out", str(out)]) == 0
    assert "--order reversed: the 1 comparison questions of 3" in capsys.readouterr().err
    (run,) = map(json.loads, out.read_text().splitlines())
    assert run["question_id"] == "q1" and run["status"] == "answered" and run["prediction"] == "Arthur's Magazine"
    assert [s["action_input"] for s in run["steps"]] == ["First for Women", "Arthur's Magazine", "Arthur's Magazine"]
    assert yaml.safe_load((tmp_path / "reversed.settings.yaml").read_text())["order"] == "reversed"
    # the default reads it as the question names the magazines
    assert main([*flags, "--out", str(tmp_path / "asked.jsonl")]) == 0
    asked = json.loads((tmp_path / "asked.jsonl").read_text().splitlines()[0])
    assert [s["action_input"] for s in asked["steps"]][:2] == ["Arthur's Magazine", "First for Women"]
    capsys.readouterr()
    assert main([*flags, "--order", "sideways", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "order 'sideways' is not one of question, reversed" in _err_line(capsys)
    assert main([*flags, "--teacher", "smollm2-135m", "--order", "reversed", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--order reversed is for a teacher (oracle, visible), not 'smollm2-135m'" in _err_line(capsys)
    assert not (tmp_path / "x.jsonl").exists()


def test_generate_with_evidence_thoughts_quotes_the_sentence_holding_the_answer(
    questions, mini_index, tmp_path, capsys
):
    flags = [
        "generate",
        "--questions",
        str(questions),
        "--teacher",
        "oracle",
        "--corpus",
        str(mini_index),
        "--prompt",
        "zeroshot",
        "--limit",
        "2",
    ]
    assert main([*flags, "--thoughts", "evidence", "--out", str(tmp_path / "evidence.jsonl")]) == 0
    assert main([*flags, "--out", str(tmp_path / "first.jsonl")]) == 0
    runs = {
        name: {
            r["question_id"]: [s["thought"] for s in r["steps"]]
            for r in map(json.loads, (tmp_path / f"{name}.jsonl").read_text().splitlines())
        }
        for name in ("evidence", "first")
    }
    # q2 asks who founded Philadelphia: the page's second sentence says it, its first does not
    assert runs["evidence"]["q2"][-1] == "It was founded in 1682 by William Penn. So the answer is William Penn."
    assert runs["first"]["q2"][-1] == "Philadelphia is the largest city in Pennsylvania. So the answer is William Penn."
    assert runs["evidence"]["q2"][:-1] == runs["first"]["q2"][:-1]
    assert yaml.safe_load((tmp_path / "evidence.settings.yaml").read_text())["thoughts"] == "evidence"
    capsys.readouterr()
    assert main([*flags, "--thoughts", "all", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "thoughts 'all' is not one of first_sentence, evidence" in _err_line(capsys)
    teacher = ["--teacher", "smollm2-135m", "--thoughts", "evidence"]
    assert main([*flags, *teacher, "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--thoughts evidence is for a teacher (oracle, visible), not 'smollm2-135m'" in _err_line(capsys)
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("command", ["ask", "generate", "eval"])
def test_a_bad_config_is_one_line_naming_the_fix(command, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    for text, expected in (
        ("modle: oracle\n", f"{config}: unknown config key 'modle'"),
        ("model: [unclosed\n", f"{config}: not YAML"),
        ("- a list\n", f"{config}: a config is a mapping of key: value"),
        ("temperature: hot\n", f"{config}: temperature: 'hot' is not a float"),
        ("max_steps: 0\n", "max_steps must be at least 1"),
    ):
        config.write_text(text)
        assert main([command, "--config", str(config)]) == 2
        err = _err_line(capsys)
        assert err.startswith("araft: error: ") and expected in err, (text, err)
    config.write_text("modle: oracle\n")
    main([command, "--config", str(config)])
    assert "did you mean model? (valid keys: model, adapter, load_in_4bit, prompt," in capsys.readouterr().err
    assert main([command, "--config", str(tmp_path / "missing.yaml")]) == 2
    assert f"cannot read config {tmp_path / 'missing.yaml'}" in _err_line(capsys)


def test_ask_takes_its_model_from_the_config(tmp_path, capsys):
    config = tmp_path / "ask.yaml"
    config.write_text("model: oracle\n")
    assert main(["ask", "q?", "--config", str(config)]) == 2
    assert "the oracle teacher answers from given HotpotQA questions" in _err_line(capsys)


def test_a_run_without_its_questions_says_where_to_give_them(tmp_path, capsys):
    assert main(["eval", "--model", "oracle", "--out", str(tmp_path / "run")]) == 2
    assert "questions is not set: pass --questions or put questions: in the --config file" in _err_line(capsys)
    assert not (tmp_path / "run").exists()


def test_training_and_run_settings_share_one_config_reader():
    from finetune.config import ConfigError as TrainConfigError

    assert TrainConfigError is ConfigError
