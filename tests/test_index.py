import json
import sqlite3

import pytest
from hypothesis import given, settings, strategies as st

from araft_lc.index import IndexOpenError, WikiIndex, build_index, normalize_title


def test_exact_title_first(mini_index):
    index = WikiIndex(mini_index)
    assert len(index) == 8
    hits = index.lookup("arthur's   MAGAZINE")
    assert hits[0].title == "Arthur's Magazine" and hits[0].score == float("-inf")
    # accents and case do not matter for the title match
    assert index.lookup("ile de france")[0].title == "Île-de-France"


def test_bm25_when_no_title_matches(mini_index):
    index = WikiIndex(mini_index)
    assert index.lookup("literary periodical Poe")[0].title == "Arthur's Magazine"
    # no page holds every word: any word will do
    assert index.lookup("capital Harrisburg zebra")[0].title == "Pennsylvania"
    assert index.lookup("qwertyuiop") == []


def test_first_paragraph_of_a_title_wins(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"title": "A", "text": "first"}, {"title": "A", "text": "second"}, {"title": "B", "text": "b"}]))
    out = tmp_path / "i.sqlite"
    meta = build_index([src], out)
    assert meta["pages"] == "2" and meta["paragraphs_read"] == "3"
    assert WikiIndex(out).lookup("A")[0].text == "first"


def test_failed_build_leaves_nothing(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text('{"title": "A", "text": "x"}\n{broken\n')
    out = tmp_path / "i.sqlite"
    with pytest.raises(ValueError, match="c.jsonl:2"):
        build_index([src], out)
    assert not out.exists() and not (tmp_path / "i.sqlite.tmp").exists()


def test_open_errors(tmp_path):
    with pytest.raises(IndexOpenError, match="does not exist: build one with `araft corpus build"):
        WikiIndex(tmp_path / "missing.sqlite")
    (tmp_path / "text.sqlite").write_text("hello")
    with pytest.raises(IndexOpenError, match="not an SQLite index"):
        WikiIndex(tmp_path / "text.sqlite")


def test_integrity(mini_index):
    con = sqlite3.connect(mini_index)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.execute("INSERT INTO pages_fts(pages_fts, rank) VALUES ('integrity-check', 1)")


@pytest.mark.parametrize("query", ['"', "AND", "OR NOT", "*", "(a", "a:b", "NEAR(x y)", "^x", "\x00", "a" * 10_000,
                                   "東京 Paris مرحبا", "''", "-x", "{title}:x"])
def test_fts_syntax_never_raises(mini_index, query):
    WikiIndex(mini_index).lookup(query)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_query_is_safe(mini_index, query):
    hits = WikiIndex(mini_index).lookup(query)
    assert isinstance(hits, list)


def test_normalize_title():
    assert normalize_title("  Île-de-France! ") == "ile de france"


def test_gold_titles_of_dev_questions_are_found(corpus_index, data_dir):
    """Every supporting-fact title of the first 100 dev questions is an exact title hit."""
    index = WikiIndex(corpus_index)
    with open(data_dir / "dev_distractor_a500.jsonl") as f:
        rows = [json.loads(next(f)) for _ in range(100)]
    titles = {t for r in rows for t in r["supporting_facts"]["title"]}
    missing = [t for t in titles if (index.title_match(t) or None) is None]
    assert missing == []

