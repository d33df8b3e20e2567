"""araft_lc.storage.jsonl: the one JSONL reader and its one error policy."""

import json

import pytest

from araft_lc.storage.jsonl import JsonlError, read_jsonl


def _file(tmp_path, text: bytes):
    path = tmp_path / "f.jsonl"
    path.write_bytes(text)
    return path


def test_blank_lines_pass_and_a_whole_last_line_needs_no_newline(tmp_path):
    path = _file(tmp_path, b'{"a": 1}\n\n  \n{"a": 2}')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]


@pytest.mark.parametrize(
    "line, problem",
    [
        (b"{not json", "not a JSON object (JSONDecodeError: "),
        (b"[1, 2]", "not a JSON object (ValueError: a JSON list, not an object)"),
        (b'"\xff"', "not a JSON object (UnicodeDecodeError: "),
    ],
)
def test_a_bad_line_is_one_line_naming_file_and_line(tmp_path, line, problem):
    path = _file(tmp_path, b'{"a": 1}\n' + line + b'\n{"a": 3}\n')
    with pytest.raises(JsonlError) as e:
        list(read_jsonl(path, fix="fix it"))
    assert str(e.value).startswith(f"{path}:2: {problem}") and str(e.value).endswith("; fix it")
    assert "\n" not in str(e.value) and e.value.lineno == 2


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path):
    whole = json.dumps({"a": 1}) + "\n"
    path = _file(tmp_path, (whole + whole[:5]).encode())
    with pytest.warns(RuntimeWarning, match=f"{path}:2: skipped a torn last line"):
        assert list(read_jsonl(path)) == [(1, {"a": 1})]
    assert path.read_bytes() == (whole + whole[:5]).encode()  # reading never writes


def test_a_whole_last_line_of_the_wrong_shape_is_no_torn_line(tmp_path):
    path = _file(tmp_path, b'{"a": 1}\n{"b": 2}')
    with pytest.raises(JsonlError, match=r"f.jsonl:2: not a record with a \(KeyError: 'a'\)"):
        list(read_jsonl(path, lambda row: row["a"], what="a record with a"))


def test_parse_words_are_kept_and_on_bad_skips(tmp_path):
    def parse(row):
        if row["a"] > 1:
            raise ValueError("a is too big: make it 1")
        return row["a"]

    path = _file(tmp_path, b'{"a": 1}\n{"a": 2}\n{"a": 1}\n')
    with pytest.raises(JsonlError, match=r"f.jsonl:2: a is too big: make it 1$"):
        list(read_jsonl(path, parse))
    bad: list[JsonlError] = []
    assert list(read_jsonl(path, parse, on_bad=bad.append)) == [(1, 1), (3, 1)]
    assert [e.lineno for e in bad] == [2]
