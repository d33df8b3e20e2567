"""The Tantivy engine: the same pages and lookups as FTS5, a rebuild that is whole, concurrent
lookups, and every entry point opening it by what is on disk. (What both engines do alike, any
query string safe and a failed build leaving nothing included, is tested in test_index.py.)"""

import json
import random
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import MINI_CORPUS

from araft_lc.wiki.corpus import Pages
from araft_lc.wiki.index import IndexOpenError, WikiIndex
from araft_lc.wiki.index_engines import build, default_engine, engine_of, index_name, open_index
from araft_lc.wiki.select import resolve_index
from araft_lc.wiki.tantivy_index import META_FILE, TantivyIndex, build_tantivy_index
from araft_lc.wiki.wikipedia import LocalWikipedia

FREE_TEXT = [
    "literary periodical Poe",
    "capital Harrisburg zebra",
    "Pennsylvania city",
    "magazine for women",
    "Who founded Philadelphia?",
    "qwertyuiop",
    "The Who",
    "poet editor short stories",
]


@pytest.fixture(scope="module")
def tantivy_mini(tmp_path_factory) -> TantivyIndex:
    out = tmp_path_factory.mktemp("tantivy") / "mini"
    build_tantivy_index([MINI_CORPUS], out)
    return TantivyIndex(out)


def test_lookups_equal_fts5_on_the_mini_corpus(tantivy_mini, mini_index):
    fts5 = WikiIndex(mini_index)
    for p in Pages([MINI_CORPUS]):
        assert tantivy_mini.title_match(p.title) == fts5.title_match(p.title)
        assert tantivy_mini.lookup(p.title)[0].title == p.title
    for query in FREE_TEXT:
        assert [h.title for h in tantivy_mini.lookup(query, k=1)] == [h.title for h in fts5.lookup(query, k=1)], query


def test_same_top1_as_fts5_for_1000_sampled_titles_of_the_sample_corpus(corpus_index, data_dir, tmp_path):
    out = tmp_path / "wiki.tantivy"
    meta = build([data_dir / "wiki_corpus.jsonl.gz"], out, engine="tantivy")
    fts5, tantivy = LocalWikipedia(corpus_index), LocalWikipedia(out)
    assert meta["pages"] == WikiIndex(corpus_index).meta["pages"] == "11736"  # the same pages
    titles = random.Random(0).sample([p.title for p in Pages([data_dir / "wiki_corpus.jsonl.gz"])], 1000)
    assert [tantivy.lookup(t) for t in titles] == [fts5.lookup(t) for t in titles]
    # BM25 alone (no exact title) still ranks the page first for almost every title
    index = tantivy.index
    assert sum(index.search(t, k=1)[0].title == t for t in titles) >= 950


def test_equal_normalised_titles_the_first_built_wins(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"title": t, "text": t + " text"})
            for t in ["Île-de-France", *(f"filler {i}" for i in range(50)), "Ile de France"]
        )
    )
    for engine in ("fts5", "tantivy"):
        out = tmp_path / index_name(engine, engine)
        build([src], out, engine=engine)
        assert open_index(out).title_match("ILE DE FRANCE").title == "Île-de-France", engine


def test_rebuild_replaces_a_whole_index(tantivy_mini, tmp_path):
    out = tmp_path / "i"
    shutil.copytree(tantivy_mini.path, out)
    src = tmp_path / "c.jsonl"
    src.write_text('{"title": "Only", "text": "one page"}\n')
    build_tantivy_index([src], out)
    assert len(TantivyIndex(out)) == 1 and TantivyIndex(out).lookup("Poe") == []


def test_concurrent_lookups_from_threads(tantivy_mini):
    queries = [p.title for p in Pages([MINI_CORPUS])] + FREE_TEXT
    expected = [tantivy_mini.lookup(q) for q in queries]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(tantivy_mini.lookup, queries * 50))
    assert got == expected * 50


def test_open_errors(tantivy_mini, tmp_path):
    with pytest.raises(IndexOpenError, match="does not exist: build one with `araft corpus build"):
        TantivyIndex(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexOpenError, match="is a folder but not an Araft index"):
        open_index(tmp_path / "empty")
    damaged = tmp_path / "damaged"
    shutil.copytree(tantivy_mini.path, damaged)
    (damaged / "meta.json").write_text("{}")
    with pytest.raises(IndexOpenError, match="is a damaged Tantivy index .*: rebuild it") as e:
        open_index(damaged)
    assert "\n" not in str(e.value)
    (damaged / META_FILE).write_text("[1, 2")
    with pytest.raises(IndexOpenError, match=f"not an Araft index \\(no readable {META_FILE}"):
        open_index(damaged)
    (damaged / META_FILE).write_text(json.dumps({"engine": "tantivy", "schema_version": "0"}))
    with pytest.raises(IndexOpenError, match="not tantivy 1: rebuild it"):
        open_index(damaged)


def test_every_entry_point_opens_either_engine(tantivy_mini, mini_index, tmp_path):
    assert engine_of(tantivy_mini.path) == "tantivy" and engine_of(mini_index) == "fts5"
    assert engine_of(MINI_CORPUS) is None and engine_of(tmp_path) is None
    assert isinstance(open_index(tantivy_mini.path), TantivyIndex) and isinstance(open_index(mini_index), WikiIndex)
    assert LocalWikipedia(tantivy_mini.path).lookup("Poe").title == "Edgar Allan Poe"
    assert resolve_index(tantivy_mini.path) == tantivy_mini.path  # an index is used as it is
    with pytest.raises(FileNotFoundError, match="is a folder but not an Araft index"):
        resolve_index(tmp_path)


def test_the_cache_keys_a_source_by_its_engine():
    fts5 = resolve_index(MINI_CORPUS, engine="fts5", quiet=True)
    tantivy = resolve_index(MINI_CORPUS, engine="tantivy", quiet=True)
    assert fts5 != tantivy and fts5.is_file() and tantivy.is_dir()
    assert fts5.name.endswith(".sqlite") and tantivy.name.endswith(".tantivy")
    assert resolve_index(MINI_CORPUS, quiet=True) == tantivy  # tantivy is installed here: the default
    assert LocalWikipedia(fts5).lookup("Poe") == LocalWikipedia(tantivy).lookup("Poe")


def test_default_engine_by_name_and_by_what_is_installed(tmp_path, monkeypatch):
    assert default_engine() == "tantivy" and default_engine("x.sqlite") == "fts5"
    with pytest.raises(ValueError, match="unknown index engine 'lucene'"):
        build([MINI_CORPUS], tmp_path / "i", engine="lucene")
    built = tmp_path / "built"
    build([MINI_CORPUS], built, engine="tantivy")
    monkeypatch.setitem(sys.modules, "tantivy", None)  # as if the package were not installed
    assert default_engine() == "fts5"
    with pytest.raises(ValueError, match=r"needs the tantivy package: pip install 'araft\[index\]'"):
        build([MINI_CORPUS], tmp_path / "i", engine="tantivy")
    with pytest.raises(IndexOpenError, match="tantivy is not installed: pip install"):
        open_index(built)
    assert not (tmp_path / "i").exists()
