"""Fuzzing with hypothesis: the action parser and the agent loop on any model output, the local
index (both engines) on any query, and every file reader on corrupted files (one line naming
the file, never a traceback)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from araft_lc.agent.graph import create_araft_agent
from araft_lc.react.parser import Action, Answer, ParseError, parse
from araft_lc.react.trajectory import read_trajectories
from araft_lc.wiki import LocalWikipedia, WikipediaTool
from araft_lc.wiki.corpus import CorpusError, read_paragraphs
from araft_lc.wiki.index import PageIndex
from evals.hotpotqa import load_questions
from finetune.config import ConfigError, SFTRunConfig, load_config
from finetune.dataset import DataError, read_records

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text that looks like the grammar, or like FTS5 or Tantivy query syntax, mixed into random text.
GRAMMAR = st.sampled_from(
    [
        "Thought:",
        "Action:",
        "[action:",
        "action_input:",
        "Answer",
        "Wikipedia",
        "]",
        ",",
        "\n",
        "Observation:",
        '"',
        "'",
        "*",
        "NEAR(",
        ")",
        "AND",
        "OR",
        "NOT",
        "^",
        ":",
        "-",
        "\x00",
        "\u202e",
        "日本",
        "Ω",
        "{",
        "\\",
    ]
)
TEXTS = st.one_of(st.text(), st.lists(st.one_of(GRAMMAR, st.text(max_size=8)), max_size=30).map("".join))


@given(TEXTS)
@FUZZ
@example("x" * 10_000)
@example("Action: [action: , action_input: ]")
@example("Action: [action: Answer, action_input: \x00]")
def test_parser_is_total(text):
    assert isinstance(parse(text, ["Wikipedia"]), (Action, Answer, ParseError))


@given(outputs=st.lists(TEXTS, min_size=1, max_size=6))
@FUZZ
def test_the_agent_ends_within_the_step_cap_on_any_model_output(outputs, scripted, mini_index):
    agent = create_araft_agent(
        scripted(script=outputs), [WikipediaTool(backend=LocalWikipedia(mini_index))], max_steps=3
    )
    state = agent.invoke({"question": "Who founded Philadelphia?"})
    assert state["status"] in ("answered", "step_limit", "parse_error", "tool_error")
    assert 1 <= len(state["steps"]) <= 3


@pytest.fixture(scope="module", params=["fts5", "tantivy"])
def fuzz_index(request, tmp_path_factory) -> PageIndex:
    """The mini corpus's index, once per engine: every query is fuzzed against both."""
    from helpers import MINI_CORPUS

    from araft_lc.wiki.index_engines import build, index_name, open_index

    path = tmp_path_factory.mktemp("fuzz") / index_name("index", request.param)
    build([MINI_CORPUS], path, engine=request.param)
    return open_index(path)


@given(TEXTS)
@FUZZ
@example("x" * 10_000)
@example('"unbalanced')
@example("NEAR(a b, 3) OR title:* AND -")
@example("'; DROP TABLE pages; --")
@example("\x00\x00")
def test_index_lookup_never_raises(fuzz_index, text):
    hits = fuzz_index.lookup(text, k=3)
    assert len(hits) <= 3
    assert len(fuzz_index) > 0  # and nothing was dropped


# -- file readers on corrupted files -----------------------------------------------------------


def _corrupt(data: bytes, where: float, junk: bytes, mode: str) -> bytes:
    at = int(where * len(data))
    if mode == "truncate":
        return data[:at]
    if mode == "insert":
        return data[:at] + junk + data[at:]
    return data[:at] + junk + data[at + len(junk) :]  # overwrite


CORRUPTION = st.tuples(
    st.floats(0, 1), st.binary(min_size=1, max_size=12), st.sampled_from(["truncate", "insert", "overwrite"])
)


def _sources(tmp: Path) -> dict[str, tuple[Path, object]]:
    """A valid file for each reader, and the call that reads it whole."""
    from helpers import MINI_CORPUS

    questions = tmp / "q.json"
    questions.write_text(
        json.dumps(
            [
                {
                    "_id": "a",
                    "question": "Who?",
                    "answer": "Penn",
                    "type": "bridge",
                    "level": "hard",
                    "supporting_facts": [["Philadelphia", 0]],
                    "context": [["Philadelphia", ["A city.", " Founded by Penn."]]],
                }
            ]
        )
    )
    corpus_gz = tmp / "corpus.jsonl.gz"
    corpus_gz.write_bytes(gzip.compress(Path(MINI_CORPUS).read_bytes()))
    config = tmp / "sft.yaml"
    shutil.copy(Path(__file__).resolve().parents[2] / "finetune" / "configs" / "sft-smollm2.yaml", config)
    return {
        "questions (json)": (questions, lambda p: list(load_questions(p))),
        "corpus (jsonl)": (Path(MINI_CORPUS), lambda p: list(read_paragraphs(p))),
        "corpus (jsonl.gz)": (corpus_gz, lambda p: list(read_paragraphs(p))),
        "trajectories": (GOLDEN / "trajectories.jsonl", lambda p: list(read_trajectories(p))),
        "sft records": (GOLDEN / "expected_sft_step.jsonl", lambda p: read_records(str(p), "sft")),
        "dpo records": (GOLDEN / "expected_dpo.jsonl", lambda p: read_records(str(p), "dpo")),
        "config": (config, lambda p: load_config(SFTRunConfig, str(p))),
    }


READERS = [
    "questions (json)",
    "corpus (jsonl)",
    "corpus (jsonl.gz)",
    "trajectories",
    "sft records",
    "dpo records",
    "config",
]


@pytest.mark.parametrize("reader", READERS)
@given(corruption=CORRUPTION)
@FUZZ
def test_a_corrupt_file_is_one_line_naming_it(reader, corruption, tmp_path_factory, ledger):
    tmp = tmp_path_factory.mktemp("corrupt")
    source, read = _sources(tmp)[reader]
    target = tmp / ("bad-" + source.name)
    target.write_bytes(_corrupt(source.read_bytes(), *corruption))
    try:
        read(target)
    except (CorpusError, DataError, ConfigError, ValueError, FileNotFoundError) as e:
        message = str(e)
        assert "\n" not in message.strip(), message
        assert target.name in message, message
        assert type(e) is not UnicodeDecodeError and "Traceback" not in message
    ledger.add("file readers", faults=1)
