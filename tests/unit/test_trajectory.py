"""araft_lc.react.trajectory: the record turns itself into the agent's own prompt, and says its version."""

import json

import pytest
from helpers import ROOT

from araft_lc.react.chat_format import to_turns
from araft_lc.react.prompt import load_prompt, render_messages
from araft_lc.react.trajectory import RECORD_VERSION, ToolCard, TrajectoryRecord, read_trajectories
from araft_lc.storage.jsonl import JsonlError

GOLDEN = ROOT / "tests" / "data" / "golden" / "trajectories.jsonl"


@pytest.mark.parametrize("style", ["fewshot", "zeroshot", "zeroshot_turns"])
def test_to_messages_is_what_the_agent_renders(style, wiki):
    record = next(read_trajectories(GOLDEN))
    for upto in range(len(record.steps) + 1):
        want = to_turns(render_messages(load_prompt(style), [wiki], record.question, record.steps[:upto]))
        assert record.to_messages(style, upto=upto) == want
        assert record.to_messages(load_prompt(style), upto=upto, tools=[ToolCard.of(wiki)]) == want
    assert record.to_messages(style) == record.to_messages(style, upto=len(record.steps))


def test_records_without_a_version_read_as_version_1_of_the_wikipedia_tool():
    assert "version" not in GOLDEN.read_text().splitlines()[0]
    records = list(read_trajectories(GOLDEN))
    assert records and all(r.version == 1 and r.tools == [] for r in records) and RECORD_VERSION == 2
    assert records[0].to_dict()["version"] == 1  # written back as what it is
    assert [card.name for card in records[0].tool_cards()] == ["Wikipedia"]


@pytest.mark.parametrize("version", [RECORD_VERSION + 1, "1", None])
def test_an_unknown_version_is_one_line_naming_the_fix(tmp_path, version):
    lines = GOLDEN.read_text().splitlines()
    newer = {**json.loads(lines[1]), "version": version}
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(newer), lines[2]]) + "\n")
    with pytest.raises(
        JsonlError,
        match=rf"t.jsonl:2: a trajectory record of version {version!r}, but this "
        rf"araft reads versions 1 to {RECORD_VERSION}: upgrade araft",
    ):
        list(read_trajectories(path))
    bad: list[int] = []
    assert len(list(read_trajectories(path, skip_bad=True, bad=bad))) == 2 and bad == [2]


def test_a_record_missing_a_field_names_its_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"question_id": "q", "steps": []}) + "\n")
    with pytest.raises(JsonlError, match="t.jsonl:1: not a trajectory record \\(TypeError: "):
        list(read_trajectories(path))


def test_a_round_trip_keeps_every_field():
    record = next(read_trajectories(GOLDEN))
    assert TrajectoryRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
