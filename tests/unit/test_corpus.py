import gzip
import json

import pytest

from araft_lc.wiki.corpus import CorpusError, read_paragraphs


def test_corpus_lines_with_sentences_or_text(tmp_path):
    from helpers import MINI_CORPUS

    paragraphs = list(read_paragraphs(MINI_CORPUS))
    assert paragraphs[0].title == "Arthur's Magazine"
    # HotpotQA's leading spaces are normalised away when sentences are joined.
    assert paragraphs[0].text == (
        "Arthur's Magazine was a literary periodical published in Philadelphia from 1844 to 1846. "
        "It printed work by Edgar Allan Poe among others."
    )
    assert paragraphs[2].text.startswith("Philadelphia is the largest city")


def test_both_hotpotqa_formats_and_gzip(tmp_path):
    official = [
        {"_id": "a", "question": "q", "answer": "x", "context": [["T1", ["One.", " Two."]], ["T2", ["Three."]]]}
    ]
    (tmp_path / "official.json").write_text(json.dumps(official))
    hf = {"id": "b", "question": "q", "answer": "x", "context": {"title": ["T3"], "sentences": [["Four.", " Five."]]}}
    with gzip.open(tmp_path / "hf.jsonl.gz", "wt") as f:
        f.write(json.dumps(hf) + "\n\n")
    assert [(p.title, p.text) for p in read_paragraphs(tmp_path / "official.json")] == [
        ("T1", "One. Two."),
        ("T2", "Three."),
    ]
    assert [(p.title, p.text) for p in read_paragraphs(tmp_path / "hf.jsonl.gz")] == [("T3", "Four. Five.")]


def test_shared_data_files_read(data_dir):
    assert sum(1 for _ in read_paragraphs(data_dir / "wiki_corpus.jsonl.gz")) == 11_736
    assert sum(1 for _ in read_paragraphs(data_dir / "train_levels_100.json")) >= 100
    assert sum(1 for _ in read_paragraphs(data_dir / "dev_distractor_b300.jsonl")) >= 300


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"title": "A", "text": "x"}\nnot json\n', r"bad\.jsonl:2: not valid JSON"),
        ('{"name": "A"}\n', r"bad\.jsonl:1: neither a HotpotQA question"),
        ("", "the file is empty"),
        ("[1, 2", r"bad\.jsonl:1: not valid JSON"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(CorpusError, match=message):
        list(read_paragraphs(path))


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        list(read_paragraphs(tmp_path / "nope.jsonl"))


@pytest.mark.parametrize("name", ["q.jsonl", "q.jsonl.gz", "q.json"])
def test_undecodable_bytes_name_the_line(tmp_path, name):
    from evals.hotpotqa import load_questions

    body = (
        b'[\n {"_id": "a", "question": "q?", "answer": "x"},\n {"_id": "b", "question": "caf\xff?"}\n]\n'
        if name.endswith(".json")
        else b'{"_id": "a", "question": "q?", "answer": "x"}\n{"_id": "b", "question": "caf\xff?"}\n'
    )
    path = tmp_path / name
    path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    line = 3 if name.endswith(".json") else 2
    with pytest.raises(
        CorpusError, match=rf"{name}:{line}: not UTF-8 text \(invalid start byte at byte \d+ of the line\)"
    ):
        list(load_questions(path))
