"""The `araft` command line, end to end on a tiny real model and a real local index."""

import json
import subprocess
import sys

import pytest
from helpers import MINI_CORPUS, ROOT, with_context

from araft import main


def test_ask_end_to_end_with_json_and_trace(tiny_llama, tmp_path, capsys):
    trace = tmp_path / "trace.jsonl"
    code = main(
        [
            "ask",
            "Which magazine was started first, Arthur's Magazine or First for Women?",
            "--model",
            str(tiny_llama),
            "--corpus",
            str(MINI_CORPUS),
            "--max-steps",
            "3",
            "--max-new-tokens",
            "12",
            "--json",
            "--trace",
            str(trace),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    record = json.loads(out)
    assert record["question"].startswith("Which magazine")
    assert record["status"] in {"answered", "step_limit", "parse_error", "tool_error"}
    assert 1 <= len(record["steps"]) <= 3
    assert record["producer"]["tool_backend"] == "local"
    assert record["producer"]["prompt_version"] == "araft-fewshot-v1"
    assert record["question_id"].startswith("ask-") and record["version"] == 2
    # the recorder's record: every model call with its prompt and output, and the run's seconds
    assert len(record["calls"]) == len(record["steps"]) and isinstance(record["seconds"], float)
    assert [c["output"] for c in record["calls"]] == [s["raw"] for s in record["steps"]]
    # The live trace went to stderr, step by step.
    assert err.count("Observation:") + err.count("Answer:") >= len(record["steps"])
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"chain_start", "chain_end", "model_start", "model_end"} <= kinds
    model_starts = [e for e in events if e["event"] == "model_start"]
    assert len(model_starts) == len(record["steps"])
    assert model_starts[0]["stop"] == ["Observation:"]
    assert model_starts[0]["messages"][1]["content"].startswith("Question: Which magazine")
    nodes = {e["node"] for e in events if e["event"] == "chain_start"}
    assert {"start", "reason"} <= nodes


@pytest.mark.parametrize("name, engine", [("mini.sqlite", []), ("mini-index", ["--engine", "tantivy"])])
def test_corpus_build_and_search(tmp_path, capsys, name, engine):
    out = tmp_path / name
    assert main(["corpus", "build", str(MINI_CORPUS), "--out", str(out), *engine]) == 0
    assert "8 pages from 8 paragraphs" in capsys.readouterr().out
    assert out.is_dir() == bool(engine)
    assert main(["corpus", "search", str(out), "periodical Philadelphia", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Arthur's Magazine was a literary periodical")
    assert lines[1].startswith("  Arthur's Magazine\tbm25 ")
    assert len(lines) == 2  # only one page holds both words


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ask", "   ", "--corpus", str(MINI_CORPUS)], "the question is empty"),
        (["ask", "q?", "--corpus", "/nonexistent/corpus.jsonl"], "corpus /nonexistent/corpus.jsonl does not exist"),
        (["ask", "q?", "--corpus", str(MINI_CORPUS), "--model", "no-such-model"], "unknown model spec"),
        (["ask", "q?", "--corpus", str(MINI_CORPUS), "--prompt", "nope"], "unknown prompt style"),
        (["corpus", "search", "/nonexistent.sqlite", "x"], "does not exist: build one with"),
        (["corpus", "build", str(MINI_CORPUS), "--out", str(MINI_CORPUS)], "exists: pass --force"),
        (["ask", "q?", "--max-steps", "0"], "max_steps must be at least 1, got 0"),
        (["ask", "q?", "--model", "oracle"], "the oracle teacher answers from given HotpotQA questions"),
        # The model is checked before the corpus (no --corpus: live Wikipedia, unreachable here).
        (["ask", "q?", "--model", "/nonexistent/model"], "model folder /nonexistent/model does not exist"),
        (["ask", "q?", "--model", str(ROOT / "tests")], "is not a model folder (it has no config.json)"),
        (["ask", "q?", "--corpus", str(MINI_CORPUS), "--adapter", "/nope"], "adapter folder /nope does not exist"),
        # An oversized question is refused before anything loads (the model named here does not exist).
        (
            ["ask", "why? " * 60_000, "--model", "/nonexistent/model"],
            "the question is 299,999 characters, more than --max-question-chars 2,000",
        ),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("araft: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_question_beyond_the_models_context_is_a_user_error(tiny_llama, tmp_path, capsys):
    small = with_context(tiny_llama, tmp_path / "tiny-512", 512)
    code = main(["ask", "Who founded Philadelphia? " * 70, "--model", str(small), "--corpus", str(MINI_CORPUS)])
    [error] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("araft: error:")]
    assert code == 2 and error.startswith("araft: error: the question does not fit the model: the prompt is ")
    assert error.endswith("past the model's context of 512 positions")


def test_bad_corpus_line_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "A", "text": "x"}\n{oops\n')
    assert main(["corpus", "build", str(bad), "--out", str(tmp_path / "i.sqlite")]) == 2
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "i.sqlite").exists()


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "araft", "corpus", "search", "/nope.sqlite", "x"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_every_argument_has_help_and_the_version_prints(capsys):
    import argparse

    from araft import build_parser
    from araft_lc import __version__

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield path, action

    missing = [f"{path} {action.dest}" for path, action in walk(build_parser(), "araft") if not action.help]
    assert missing == []
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"araft {__version__}"


def test_convert_sft_and_dpo_have_their_own_help(capsys):
    for kind, own, other in (("sft", "--granularity", "--kinds"), ("dpo", "--kinds", "--granularity")):
        with pytest.raises(SystemExit):
            main(["convert", kind, "--help"])
        text = capsys.readouterr().out
        assert own in text and other not in text and "(default: " in text


def test_convert_that_drops_every_record_fails_and_writes_nothing(tmp_path, tiny_llama, capsys):
    from helpers import TEST_DATA

    out = tmp_path / "sft.jsonl"
    code = main(
        [
            "convert",
            "sft",
            str(TEST_DATA / "golden" / "trajectories.jsonl"),
            "--out",
            str(out),
            "--format",
            "text",
            "--tokenizer",
            str(tiny_llama),
            "--max-tokens",
            "10",
        ]
    )
    assert code == 2 and not out.exists()
    assert "records are longer than --max-tokens 10" in capsys.readouterr().err


def test_ask_streams_each_step_with_its_time(tiny_llama, capsys):
    assert (
        main(
            [
                "ask",
                "Who founded Philadelphia?",
                "--model",
                str(tiny_llama),
                "--corpus",
                str(MINI_CORPUS),
                "--max-steps",
                "2",
                "--max-new-tokens",
                "6",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[step 1: " in out and "[step 2: " in out and "Observation: " in out


def test_ask_with_samples_shows_each_run_and_the_vote(tiny_llama, capsys):
    assert (
        main(
            [
                "ask",
                "Who founded Philadelphia?",
                "--model",
                str(tiny_llama),
                "--corpus",
                str(MINI_CORPUS),
                "--max-steps",
                "2",
                "--max-new-tokens",
                "6",
                "--samples",
                "3",
                "--json",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert [r["run"] for r in record["runs"]] == [0, 1, 2]
    assert {k: record["producer"][k] for k in ("samples", "sample_temperature", "vote", "backend")} == {
        "samples": 3,
        "sample_temperature": 0.7,
        "vote": "grounded",
        "backend": "torch",
    }
    assert record["vote"]["rule"] == "grounded" and record["steps"] == record["runs"][record["vote"]["run"]]["steps"]
    assert "[run 0 (greedy): " in err and "[run 2 (sampled): " in err and "Vote (grounded, 3 runs): " in err
    assert main(["ask", "Who?", "--model", str(tiny_llama), "--corpus", str(MINI_CORPUS), "--samples", "0"]) == 2
    assert "araft: error: samples is 0: 1 runs once, K > 1 votes over K runs" in capsys.readouterr().err


def test_ask_generate_and_eval_share_the_token_default_and_araft_model(monkeypatch):
    from araft import build_parser
    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.react.bounds import MAX_NEW_TOKENS

    monkeypatch.setenv("ARAFT_MODEL", "araft-dpo")
    parser = build_parser()
    ask = parser.parse_args(["ask", "q?"])
    ev = parser.parse_args(["eval", "--questions", "q.jsonl", "--out", "run"])
    gen = parser.parse_args(["generate", "--questions", "q.jsonl", "--teacher", "oracle", "--out", "t.jsonl"])
    assert ask.max_new_tokens == ev.max_new_tokens == gen.max_new_tokens == MAX_NEW_TOKENS
    assert AraftChatModel.model_fields["max_new_tokens"].default == MAX_NEW_TOKENS
    assert ask.model == ev.model == "araft-dpo"
