"""The local Wikipedia index: one SQLite file with an FTS5 table, built by streaming; and what
every index engine shares (``Hit``, ``PageIndex``, title normalisation, query words, the meta record).

Lookup is exact (normalised) title match first, then BM25 over titles and text (titles weigh
more). Every query string is reduced to quoted word tokens before it reaches FTS5, so no user
text is ever parsed as FTS5 syntax. FTS5 needs nothing beyond Python; ``tantivy_index`` is the
engine for Wikipedia scale (``index_engines`` chooses).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
import unicodedata
from abc import ABC, abstractmethod
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from araft_lc.storage.atomic_file import built_aside
from araft_lc.storage.output_lock import output_lock
from araft_lc.wiki.corpus import Pages

__all__ = [
    "IndexOpenError",
    "Hit",
    "PageIndex",
    "WikiIndex",
    "build_index",
    "normalize_title",
    "query_words",
    "is_index",
    "file_digest",
    "index_meta",
    "SCHEMA_VERSION",
]

ENGINE = "fts5"
SCHEMA_VERSION = "1"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_WORD = re.compile(r"\w+", re.UNICODE)
# BM25 column weights (title, text): a query word in the title counts ten times one in the text.
_BM25 = "bm25(pages_fts, 10.0, 1.0)"


class IndexOpenError(ValueError):
    """An index path that is missing or not an Araft index."""


@dataclass(frozen=True)
class Hit:
    title: str
    text: str
    score: float  # lower is better (minus BM25, every engine); exact title matches score -inf


def normalize_title(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a title."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_WORD.findall(text.casefold()))


def is_index(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


# Words in most pages: they add nothing to the ranking and make an OR query touch every page.
_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have he her his how in is it its of on "
    "or she that the their they this to was were what when where which who whom whose why with".split()
)


def query_words(text: str) -> list[str]:
    """The words of ``text`` a search looks for: stopwords dropped (unless that leaves none), at most 64."""
    words = _WORD.findall(text)
    content = [w for w in words if w.casefold() not in _STOPWORDS]
    # A query of stopwords alone ("The Who") still searches for them.
    return (content or words)[:64]


def _fts_query(words: Sequence[str], op: str) -> Optional[str]:
    if not words:
        return None
    # Each word is quoted: FTS5 then reads it as a plain string, never as syntax.
    return f" {op} ".join(f'"{w}"' for w in words)


_DDL = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE pages(id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE, norm_title TEXT NOT NULL,
                   text TEXT NOT NULL);
CREATE INDEX pages_norm_title ON pages(norm_title);
CREATE VIRTUAL TABLE pages_fts USING fts5(title, text, content='pages', content_rowid='id',
                                          tokenize='unicode61 remove_diacritics 2');
"""


def build_index(
    sources: Iterable[str | Path],
    out: str | Path,
    *,
    batch_size: int = 20_000,
    progress: Optional[Callable[[int], None]] = None,
) -> dict[str, str]:
    """Build an index from source files, streaming, one transaction per batch.

    The index is written to ``out + '.tmp'``, fsynced and renamed into place only when complete,
    so a crash or a full disk never leaves a half-built index under ``out``; one build at a time
    owns ``out`` (``out + '.lock'``). The first paragraph of a title wins (``corpus.Pages``).

    Returns:
        The index's metadata (pages, sources, build seconds).

    Raises:
        CorpusError: a source cannot be read.
        OutputLocked: another build is writing ``out``.
        WriteError: the disk is full, read-only or failing (nothing is left under ``out``).
    """
    out = Path(out)
    with output_lock(out), built_aside(out) as tmp:
        return _build(Pages(sources), tmp, batch_size, progress)


def _build(pages: Pages, tmp: Path, batch_size: int, progress: Optional[Callable[[int], None]]) -> dict[str, str]:
    start = time.perf_counter()
    with closing(sqlite3.connect(tmp)) as con:
        # The temp file is thrown away on any failure, so durability during the build buys nothing
        # (built_aside fsyncs the whole file before it gets its name).
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.executescript(_DDL)
        rows: list[tuple[str, str, str]] = []

        def flush() -> None:
            with con:
                con.executemany("INSERT INTO pages(title, norm_title, text) VALUES (?, ?, ?)", rows)
            rows.clear()

        for p in pages:
            rows.append((p.title, normalize_title(p.title), p.text))
            if len(rows) >= batch_size:
                flush()
                if progress:
                    progress(pages.paragraphs_read)
        flush()
        with con:
            con.execute("INSERT INTO pages_fts(pages_fts) VALUES ('rebuild')")
            con.execute("INSERT INTO pages_fts(pages_fts) VALUES ('optimize')")
        meta = index_meta(pages, ENGINE, SCHEMA_VERSION, start)
        with con:
            con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
    return meta


def index_meta(pages: Pages, engine: str, schema_version: str, start: float) -> dict[str, str]:
    """An index's meta record, once ``pages`` has been read whole (the same keys for every engine)."""
    return {
        "engine": engine,
        "schema_version": schema_version,
        "pages": str(pages.pages),
        "paragraphs_read": str(pages.paragraphs_read),
        "sources": os.pathsep.join(str(s) for s in pages.sources),
        "build_seconds": f"{time.perf_counter() - start:.2f}",
    }


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (used to key cached indexes by their source's content)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class PageIndex(ABC):
    """What the Wikipedia tool needs of an index, whatever its engine: ``title_match``, ``search``
    (each engine gives ``search`` and ``_first_titled``), ``lookup`` and the page count. Read-only,
    safe to share between threads."""

    meta: dict[str, str]

    def __len__(self) -> int:
        return int(self.meta.get("pages", 0))

    def close(self) -> None:  # noqa: B027 (a default: an engine with nothing to release keeps it)
        """Release the files (the index cannot be used afterwards)."""

    def title_match(self, query: str) -> Optional[Hit]:
        """The first page built whose normalised title equals ``query``'s, if any."""
        norm = normalize_title(query)
        return self._first_titled(norm) if norm else None

    @abstractmethod
    def _first_titled(self, norm_title: str) -> Optional[Hit]:
        """The first page built with this normalised title (score -inf), if any."""

    @abstractmethod
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Top ``k`` pages by BM25 over title and text: all words first, any word when that finds nothing."""

    def lookup(self, query: str, k: int = 5) -> list[Hit]:
        """The exact title match (if any) first, then the BM25 hits, without duplicates."""
        exact = self.title_match(query)
        hits = [exact] if exact else []
        for hit in self.search(query, k):
            if len(hits) >= k:
                break
            if not exact or hit.title != exact.title:
                hits.append(hit)
        return hits


class WikiIndex(PageIndex):
    """The SQLite FTS5 engine's index: one file, read-only; safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise IndexOpenError(
                f"index {self.path} does not exist: build one with `araft corpus build SOURCE... --out {self.path}`"
            )
        if not is_index(self.path):
            raise IndexOpenError(f"{self.path} is not an SQLite index: build one with `araft corpus build`")
        uri = f"file:{self.path.resolve()}?mode=ro"
        self._con = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            self.meta = dict(self._con.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as e:
            raise IndexOpenError(
                f"{self.path} is not an Araft index ({e}): rebuild it with `araft corpus build`"
            ) from None

    def close(self) -> None:
        self._con.close()

    def _first_titled(self, norm_title: str) -> Optional[Hit]:
        row = self._con.execute(
            "SELECT title, text FROM pages WHERE norm_title = ? ORDER BY id LIMIT 1", (norm_title,)
        ).fetchone()
        return Hit(row[0], row[1], float("-inf")) if row else None

    def search(self, query: str, k: int = 5) -> list[Hit]:
        words = query_words(query)
        for op in ("AND", "OR"):
            fts = _fts_query(words, op)
            if fts is None:
                return []
            # Rank in the FTS index alone, then read the k winners' rows: joining first would
            # read the text of every matching page (slower at scale: benchmarks/RESULTS.md).
            rows = self._con.execute(
                f"SELECT p.title, p.text, s.score FROM (SELECT rowid, {_BM25} AS score FROM pages_fts "
                "WHERE pages_fts MATCH ? ORDER BY score LIMIT ?) s JOIN pages p ON p.id = s.rowid "
                "ORDER BY s.score",
                (fts, k),
            ).fetchall()
            if rows:
                return [Hit(t, x, s) for t, x, s in rows]
        return []
