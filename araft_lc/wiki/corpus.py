"""Readers of Wikipedia paragraphs: HotpotQA question files (both formats) and corpus files.

Every reader streams (one line at a time; the official HotpotQA JSON list is the one format that
must be read whole), and every malformed input raises :class:`CorpusError` naming ``file:line``.
:class:`Pages` turns paragraphs into pages (each title once); every index engine reads through it.
"""

from __future__ import annotations

import bz2
import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

__all__ = [
    "CorpusError",
    "Paragraph",
    "open_text",
    "open_bytes",
    "iter_json_records",
    "read_paragraphs",
    "paragraphs_of_record",
    "Pages",
]


class CorpusError(ValueError):
    """A source file that cannot be read as a corpus; the message names the file and line."""


@dataclass(frozen=True)
class Paragraph:
    title: str
    text: str


def open_text(path: Path) -> IO[str]:
    """Open plain, gzip or bz2 text by the file's suffix."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def open_bytes(path: Path) -> IO[bytes]:
    """Open plain, gzip or bz2 bytes by the file's suffix (decoded line by line, so that a byte
    that is not UTF-8 is named by its line)."""
    if path.suffix == ".gz":
        # typeshed declares GzipFile a BufferedIOBase, not an IO[bytes], though it has every method of one
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def _not_utf8(path: Path, lineno: int, e: UnicodeDecodeError) -> CorpusError:
    return CorpusError(
        f"{path}:{lineno}: not UTF-8 text ({e.reason} at byte {e.start} of the line); save the file as UTF-8"
    )


def _join(sentences: Any) -> str:
    # HotpotQA keeps each sentence's leading space; the abstracts dump nests lists of sentences.
    if isinstance(sentences, str):
        return " ".join(sentences.split())
    parts: list[str] = []
    for s in sentences:
        parts.append(_join(s) if isinstance(s, list) else str(s))
    return " ".join(" ".join(parts).split())


def paragraphs_of_record(record: Any, where: str) -> Iterator[Paragraph]:
    """The paragraphs of one JSON object of any supported shape."""
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}")
    context = record.get("context")
    if isinstance(context, list):  # official HotpotQA: [[title, [sentences]], ...]
        for item in context:
            if not (isinstance(item, list) and len(item) == 2):
                raise CorpusError(f"{where}: context items must be [title, [sentences]]")
            yield Paragraph(str(item[0]), _join(item[1]))
    elif isinstance(context, dict):  # Hugging Face hotpot_qa: {title: [...], sentences: [[...]]}
        titles, sentences = context.get("title"), context.get("sentences")
        if not isinstance(titles, list) or not isinstance(sentences, list) or len(titles) != len(sentences):
            raise CorpusError(f"{where}: context must hold equal-length 'title' and 'sentences' lists")
        for title, sents in zip(titles, sentences, strict=True):
            yield Paragraph(str(title), _join(sents))
    elif "title" in record and ("sentences" in record or "text" in record):
        body = record.get("sentences", record.get("text"))
        yield Paragraph(str(record["title"]), _join(body))
    else:
        raise CorpusError(
            f"{where}: neither a HotpotQA question (with 'context') nor a corpus line "
            "(with 'title' and 'sentences' or 'text')"
        )


def iter_json_records(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` for each record of a JSON list or JSON-lines file (plain, gz or bz2).

    Raises:
        CorpusError: the file is missing, empty, unreadable, or holds invalid JSON (file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    try:
        with open_bytes(path) as f:
            head = b""
            while not head:
                chunk = f.read(1)
                if not chunk:
                    raise CorpusError(f"{path}: the file is empty")
                head = chunk.strip()
            f.seek(0)
            if head == b"[":
                data = f.read()
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as e:
                    line_start = data.rfind(b"\n", 0, e.start) + 1
                    e.start -= line_start
                    raise _not_utf8(path, data.count(b"\n", 0, line_start) + 1, e) from None
                try:
                    records = json.loads(text)
                except json.JSONDecodeError as e:
                    raise CorpusError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
                for i, record in enumerate(records):
                    yield f"{path}: item {i}", record
                return
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise _not_utf8(path, lineno, e) from None
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CorpusError(
                        f"{path}:{lineno}: not valid JSON ({e.msg}); each line must be one JSON object"
                    ) from None
                yield f"{path}:{lineno}", record
    except (OSError, EOFError, zlib.error) as e:
        # a torn or corrupt .gz/.bz2 (zlib.error, EOFError)
        raise CorpusError(f"{path}: cannot read ({e})") from None


def read_paragraphs(path: str | Path) -> Iterator[Paragraph]:
    """Every paragraph of a source file, duplicates included (the index keeps the first).

    Raises:
        CorpusError: the file is missing, empty, or holds a line that is not a supported record.
    """
    for where, record in iter_json_records(path):
        yield from paragraphs_of_record(record, where)


class Pages:
    """The pages of source files, streamed: each title once, with its first paragraph; paragraphs
    with a blank title are skipped. Every index engine builds from this, so all hold the same pages.

    Iterating holds the titles seen so far in memory (about 100 MB per million pages).
    """

    def __init__(self, sources: Iterable[str | Path]):
        self.sources = [Path(s) for s in sources]
        self.paragraphs_read = 0  # paragraphs with a title, repeats included, read so far
        self.pages = 0  # pages yielded so far

    def __iter__(self) -> Iterator[Paragraph]:
        seen: set[str] = set()
        for source in self.sources:
            for p in read_paragraphs(source):
                if not p.title.strip():
                    continue
                self.paragraphs_read += 1
                if p.title in seen:
                    continue
                seen.add(p.title)
                self.pages += 1
                yield p
