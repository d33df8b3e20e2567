"""Which index engine: chosen by name to build, and recognised by what is on disk to open.

``fts5``: one SQLite file, nothing to install. ``tantivy``: a folder, ``pip install
'araft[index]'``; the same pages and lookups, with free-text search that stays fast at Wikipedia
scale (benchmarks/RESULTS.md). The default is fts5 for an output named ``*.sqlite``, else
tantivy where it is installed, else fts5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

from araft_lc.wiki.index import IndexOpenError, PageIndex, WikiIndex, build_index, is_index
from araft_lc.wiki.tantivy_index import (
    INSTALL_HINT,
    TantivyIndex,
    build_tantivy_index,
    is_tantivy_index,
    tantivy_available,
)

__all__ = ["ENGINES", "default_engine", "engine_of", "open_index", "build", "index_name"]

ENGINES = ("fts5", "tantivy")


def default_engine(out: Optional[str | Path] = None) -> str:
    """``fts5`` for an ``out`` named ``*.sqlite``; else ``tantivy`` where the package is installed
    (its free-text search stays fast at Wikipedia scale), else ``fts5``."""
    if out is not None and Path(out).suffix == ".sqlite":
        return "fts5"
    return "tantivy" if tantivy_available() else "fts5"


def engine_of(path: str | Path) -> Optional[str]:
    """The engine of the index at ``path`` (an SQLite file or a Tantivy folder), or None."""
    path = Path(path)
    if path.is_dir():
        return "tantivy" if is_tantivy_index(path) else None
    return "fts5" if is_index(path) else None


def index_name(stem: str, engine: str) -> str:
    """The name an index of ``engine`` gets: ``STEM.sqlite`` (a file) or ``STEM.tantivy`` (a folder)."""
    return f"{stem}.sqlite" if engine == "fts5" else f"{stem}.{engine}"


def open_index(path: str | Path) -> PageIndex:
    """The index at ``path``, whichever engine built it.

    Raises:
        IndexOpenError: ``path`` is missing, not an index, damaged, or needs tantivy, not installed.
    """
    path = Path(path)
    if path.is_dir():
        if not is_tantivy_index(path):
            raise IndexOpenError(f"{path} is a folder but not an Araft index: build one with `araft corpus build`")
        return TantivyIndex(path)
    return WikiIndex(path)


def build(
    sources: Iterable[str | Path],
    out: str | Path,
    *,
    engine: Optional[str] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> dict[str, str]:
    """Build an index of ``engine`` (default: :func:`default_engine` of ``out``) at ``out`` (see ``build_index``).

    Raises:
        ValueError: an unknown engine, or tantivy asked for and not installed.
        CorpusError, OutputLocked, WriteError: as ``build_index``.
    """
    engine = engine or default_engine(out)
    if engine not in ENGINES:
        raise ValueError(f"unknown index engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "tantivy":
        if not tantivy_available():
            raise ValueError(f"the tantivy engine needs the tantivy package: {INSTALL_HINT} (or use --engine fts5)")
        return build_tantivy_index(sources, out, progress=progress)
    return build_index(sources, out, progress=progress)
