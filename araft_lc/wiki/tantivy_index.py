"""The Tantivy index engine: the same pages and lookups as the SQLite FTS5 index, with dynamic
pruning (block-max WAND), so free-text search reads a small share of the postings at Wikipedia
scale (benchmarks/RESULTS.md).

An index is a folder: Tantivy's files and ``araft_index.json``, the meta record (engine, schema
version, pages, ...). Lookup is an exact normalised-title match first (a raw ``norm_title``
field, the first page built wins, as in FTS5), then BM25 over title (weight 10) and text, scored
as FTS5 scores it (one field, below). Queries are built from terms, never parsed: no user text
reaches Tantivy's query language.
Needs ``pip install 'araft[index]'``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from araft_lc.storage.atomic_file import built_aside
from araft_lc.storage.error_text import error_text
from araft_lc.storage.output_lock import output_lock
from araft_lc.storage.write_error import storage_fault
from araft_lc.wiki.corpus import CorpusError, Pages
from araft_lc.wiki.index import Hit, IndexOpenError, PageIndex, index_meta, normalize_title, query_words

__all__ = ["TantivyIndex", "build_tantivy_index", "is_tantivy_index", "tantivy_available", "ENGINE", "META_FILE"]

ENGINE = "tantivy"
SCHEMA_VERSION = "1"
META_FILE = "araft_index.json"
INSTALL_HINT = "pip install 'araft[index]'"
_TOKENIZER = "araft_words"
# FTS5's bm25(10, 1) is BM25F: a title word counts as ten text words in one term frequency, under
# one IDF (pages, not fields) and one saturation. One searched field, the title ten times then the
# text, scores the same way (its length counts the title ten times: the one difference). Per-field
# BM25 with a title boost ranked worse: the title field's own IDF made any title word win
# (benchmarks/RESULTS.md).
_TITLE_REPEAT = 10
_MAX_TOKEN_BYTES = 255  # longer tokens are not indexed (Tantivy refuses terms of 64 KB)
# The writer's memory for the segments in the making, split between its threads; more makes
# fewer segments (faster search) for more build memory.
_WRITER_HEAP_BYTES = 256_000_000


def tantivy_available() -> bool:
    """Whether the ``tantivy`` package (the ``index`` extra) is installed."""
    try:
        import tantivy  # noqa: F401
    except ImportError:
        return False
    return True


def _tantivy(path: Path) -> Any:
    try:
        import tantivy
    except ImportError:
        raise IndexOpenError(f"{path} is a Tantivy index and tantivy is not installed: {INSTALL_HINT}") from None
    return tantivy


def is_tantivy_index(path: Path) -> bool:
    """Whether ``path`` is a folder that holds an Araft Tantivy index's meta record."""
    return (path / META_FILE).is_file()


def _analyzer(tantivy: Any) -> Any:
    # Words of letters and digits, lower-cased and accent-folded: FTS5's unicode61 remove_diacritics 2.
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(_MAX_TOKEN_BYTES))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def _schema(tantivy: Any) -> Any:
    schema = tantivy.SchemaBuilder()
    schema.add_unsigned_field("id", fast=True)  # build order: the first of equal titles wins
    schema.add_text_field("norm_title", tokenizer_name="raw", index_option="basic")
    # Shown, not searched: stored bytes (a text field would be indexed too).
    schema.add_bytes_field("title", stored=True)
    schema.add_bytes_field("text", stored=True)
    schema.add_text_field("body", tokenizer_name=_TOKENIZER, index_option="freq")  # searched, not shown
    return schema.build()


def build_tantivy_index(
    sources: Iterable[str | Path],
    out: str | Path,
    *,
    batch_size: int = 20_000,
    progress: Optional[Callable[[int], None]] = None,
) -> dict[str, str]:
    """Build a Tantivy index folder from source files, as ``index.build_index`` builds an SQLite
    file: streaming ``corpus.Pages``, at ``out + '.tmp'`` renamed into place when whole and fsynced,
    one build at a time; the same meta record (returned) and the same errors, and ImportError
    without tantivy.
    """
    import tantivy

    out = Path(out)
    with output_lock(out), built_aside(out) as tmp:
        return _build(tantivy, Pages(sources), tmp, batch_size, progress)


def _build(
    tantivy: Any, pages: Pages, tmp: Path, batch_size: int, progress: Optional[Callable[[int], None]]
) -> dict[str, str]:
    start = time.perf_counter()
    tmp.mkdir()
    index = tantivy.Index(_schema(tantivy), path=str(tmp), reuse=False)
    index.register_tokenizer(_TOKENIZER, _analyzer(tantivy))
    writer = index.writer(heap_size=_WRITER_HEAP_BYTES)
    try:
        for n, p in enumerate(pages):
            body = " ".join([p.title] * _TITLE_REPEAT + [p.text])
            doc = tantivy.Document(norm_title=normalize_title(p.title), body=body)
            doc.add_unsigned("id", n)  # a Python int would be taken as i64, which the u64 column refuses
            doc.add_bytes("title", p.title.encode())
            doc.add_bytes("text", p.text.encode())
            writer.add_document(doc)
            if progress and n % batch_size == batch_size - 1:
                progress(pages.paragraphs_read)
        writer.commit()
        # Joins the writer's threads and its merges: nothing writes into the folder after this.
        writer.wait_merging_threads()
    except BaseException as e:
        try:  # join the threads before the folder is removed
            writer.wait_merging_threads()
        except ValueError:
            pass  # already joined, or the thread that failed
        # A failed writer thread says only "a worker thread encountered an error": ask the disk.
        fault = None if isinstance(e, CorpusError) else storage_fault(tmp)
        if fault is not None:
            raise fault from e
        raise
    meta = index_meta(pages, ENGINE, SCHEMA_VERSION, start)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


class TantivyIndex(PageIndex):
    """The Tantivy engine's index: one folder, read-only; safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise IndexOpenError(
                f"index {self.path} does not exist: build one with "
                f"`araft corpus build SOURCE... --engine tantivy --out {self.path}`"
            )
        try:
            self.meta = {str(k): str(v) for k, v in json.loads((self.path / META_FILE).read_text("utf-8")).items()}
        except (OSError, ValueError, AttributeError) as e:
            raise IndexOpenError(
                f"{self.path} is not an Araft index (no readable {META_FILE}: {e}): "
                "rebuild it with `araft corpus build`"
            ) from None
        if self.meta.get("engine") != ENGINE or self.meta.get("schema_version") != SCHEMA_VERSION:
            raise IndexOpenError(
                f"{self.path} holds a {self.meta.get('engine')} index of schema "
                f"{self.meta.get('schema_version')}, not tantivy {SCHEMA_VERSION}: "
                "rebuild it with `araft corpus build`"
            )
        tantivy = _tantivy(self.path)
        try:
            index = tantivy.Index.open(str(self.path))
            index.register_tokenizer(_TOKENIZER, _analyzer(tantivy))
            index.config_reader(reload_policy="Manual")  # never rebuilt in place: no file watcher
            self._searcher = index.searcher()
        except (OSError, ValueError) as e:
            first = error_text(e, 200, with_type=False)
            raise IndexOpenError(
                f"{self.path} is a damaged Tantivy index ({first}): rebuild it with `araft corpus build`"
            ) from None
        self._tantivy, self._schema, self._analyzer = tantivy, index.schema, _analyzer(tantivy)

    def _first_titled(self, norm_title: str) -> Optional[Hit]:
        t = self._tantivy
        found = self._searcher.search(
            t.Query.term_query(self._schema, "norm_title", norm_title),
            limit=1,
            count=False,
            order_by_field="id",
            order=t.Order.Asc,
        ).hits
        return self._hit(found[0][1], float("-inf")) if found else None

    def search(self, query: str, k: int = 5) -> list[Hit]:
        terms = [t for w in query_words(query) for t in self._analyzer.analyze(w)]
        if not terms or k <= 0:
            return []
        for all_words in (True, False):
            # count=False: no total to count, so the top-k collector may skip (block-max WAND).
            found = self._searcher.search(self._query(terms, all_words), limit=k, count=False).hits
            if found:
                return [self._hit(address, -score) for score, address in found]
        return []

    def _query(self, terms: list[str], all_words: bool) -> Any:
        t = self._tantivy
        # A disjunction of term queries is the shape Tantivy prunes with block-max WAND.
        occur = t.Occur.Must if all_words else t.Occur.Should
        return t.Query.boolean_query([(occur, t.Query.term_query(self._schema, "body", term)) for term in terms])

    def _hit(self, address: Any, score: float) -> Hit:
        doc = self._searcher.doc(address)
        return Hit(doc.get_first("title").decode(), doc.get_first("text").decode(), score)
