import json
import sqlite3

import pytest
from helpers import MINI_CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

from araft_lc.wiki.index import IndexOpenError, WikiIndex, normalize_title
from araft_lc.wiki.index_engines import build, index_name, open_index

ENGINES = ["fts5", "tantivy"]


@pytest.fixture(scope="module", params=ENGINES)
def any_index(request, tmp_path_factory):
    """The mini corpus's index, once per engine: what every engine must do alike."""
    out = tmp_path_factory.mktemp("index") / index_name("mini", request.param)
    build([MINI_CORPUS], out, engine=request.param)
    return open_index(out)


def test_exact_title_first(any_index):
    index = any_index
    assert len(index) == 8
    hits = index.lookup("arthur's   MAGAZINE")
    assert hits[0].title == "Arthur's Magazine" and hits[0].score == float("-inf")
    # accents and case do not matter for the title match
    assert index.lookup("ile de france")[0].title == "Île-de-France"


def test_bm25_when_no_title_matches(any_index):
    index = any_index
    assert index.lookup("literary periodical Poe")[0].title == "Arthur's Magazine"
    # no page holds every word: any word will do
    assert index.lookup("capital Harrisburg zebra")[0].title == "Pennsylvania"
    assert index.lookup("qwertyuiop") == []
    hits = index.search("magazine", k=3)
    assert len(hits) == 3 and hits == sorted(hits, key=lambda h: h.score)  # lower is better, every engine


@pytest.mark.parametrize("engine", ENGINES)
def test_first_paragraph_of_a_title_wins(tmp_path, engine):
    src = tmp_path / "c.jsonl"
    src.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"title": "A", "text": "first"},
                {"title": "A", "text": "second"},
                {"title": "B", "text": "b"},
                {"title": " ", "text": "no title"},
            ]
        )
    )
    out = tmp_path / index_name("i", engine)
    meta = build([src], out, engine=engine)
    assert meta["pages"] == "2" and meta["paragraphs_read"] == "3" and meta["engine"] == engine
    assert open_index(out).lookup("A")[0].text == "first"


@pytest.mark.parametrize("engine", ENGINES)
def test_failed_build_leaves_nothing(tmp_path, engine):
    src = tmp_path / "c.jsonl"
    src.write_text('{"title": "A", "text": "x"}\n{broken\n')
    with pytest.raises(ValueError, match="c.jsonl:2"):
        build([src], tmp_path / index_name("i", engine), engine=engine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]  # no index, no .tmp, no lock


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


# FTS5's syntax and Tantivy's query language
@pytest.mark.parametrize(
    "query",
    [
        '"',
        "AND",
        "OR NOT",
        "*",
        "(a",
        "a:b",
        "NEAR(x y)",
        "^x",
        "\x00",
        "x\x00y",
        "a" * 10_000,
        "x" * 300 + " y",
        "東京 Paris مرحبا",
        "''",
        "-x",
        "+x",
        "{title}:x",
        "title:x",
        "body:[a TO z]",
        "a~2",
        "/re.*/",
        "\\",
        "IN [a b]",
        "*:*",
        "",
    ],
)
def test_query_syntax_never_raises(any_index, query):
    any_index.lookup(query)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_query_is_safe(any_index, query):
    hits = any_index.lookup(query)
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
