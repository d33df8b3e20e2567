"""Choosing the Wikipedia backend: a local index (or a source file, indexed once) or live."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

from araft_lc.storage.cache_dir import cache_dir
from araft_lc.wiki.index import file_digest
from araft_lc.wiki.index_engines import build, default_engine, engine_of, index_name
from araft_lc.wiki.live_wikipedia import LiveWikipedia, WikipediaUnavailable
from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool

__all__ = ["resolve_index", "wikipedia_tool"]

NO_BACKEND_HINT = (
    "pass --corpus FILE: a HotpotQA question file, a corpus .jsonl[.gz] of {title, sentences|text} "
    "lines (e.g. ../shared/data/hotpotqa/wiki_corpus.jsonl.gz), or an index built with "
    "`araft corpus build SOURCE... --out FILE.sqlite`"
)


def resolve_index(corpus: str | Path, *, engine: Optional[str] = None, quiet: bool = False) -> Path:
    """An index path for ``corpus``: itself if it is an index (a file or a folder, either engine),
    else a cached index of it.

    A source file is indexed once per engine (default: ``index_engines.default_engine``) into
    ``<cache>/indexes/<sha256 of its bytes>.sqlite`` (fts5) or ``.tantivy`` (a folder).
    """
    path = Path(corpus).expanduser()
    if engine_of(path):
        return path
    if path.is_dir():
        raise FileNotFoundError(f"corpus {path} is a folder but not an Araft index: {NO_BACKEND_HINT}")
    if not path.is_file():
        raise FileNotFoundError(f"corpus {path} does not exist: {NO_BACKEND_HINT}")
    engine = engine or default_engine()
    target = cache_dir("indexes") / index_name(file_digest(path)[:24], engine)
    if not target.exists():
        if not quiet:
            print(f"indexing {path} once into {target} ...", file=sys.stderr, flush=True)
        build([path], target, engine=engine)
    return target


def wikipedia_tool(
    corpus: Optional[str | Path] = None,
    *,
    live_api: Optional[str] = None,
    check_live: bool = False,
    max_chars: int = 600,
) -> WikipediaTool:
    """The Wikipedia tool over ``corpus`` (or ``$ARAFT_CORPUS``), else over live Wikipedia.

    Raises:
        FileNotFoundError: ``corpus`` does not exist.
        WikipediaUnavailable: live was chosen, ``check_live`` is set and the API does not answer.
    """
    corpus = corpus or os.environ.get("ARAFT_CORPUS") or None
    if corpus:
        return WikipediaTool(backend=LocalWikipedia(resolve_index(corpus)), max_chars=max_chars)
    backend = LiveWikipedia(live_api) if live_api else LiveWikipedia()
    if check_live:
        try:
            backend.ping()
        except WikipediaUnavailable as e:
            raise WikipediaUnavailable(f"live Wikipedia is unreachable ({e}); {NO_BACKEND_HINT}") from None
    return WikipediaTool(backend=backend, max_chars=max_chars)
