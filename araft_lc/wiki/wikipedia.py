"""The Wikipedia tool: one observation format over interchangeable backends (live or local)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field

from araft_lc.wiki.index import PageIndex

__all__ = ["LookupResult", "WikipediaBackend", "LocalWikipedia", "WikipediaTool", "cut_at_sentence"]

_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s)")


@dataclass(frozen=True)
class LookupResult:
    """What a backend found for a query: a page, a disambiguation list, or nothing."""

    query: str
    title: Optional[str] = None
    text: Optional[str] = None
    may_refer_to: tuple[str, ...] = ()
    similar: tuple[str, ...] = ()


class WikipediaBackend(Protocol):
    """Anything that looks a query up; it may raise, the tool turns that into an observation."""

    name: str

    def lookup(self, query: str) -> LookupResult: ...


def cut_at_sentence(text: str, max_chars: int) -> str:
    """Whitespace-normalise ``text`` and cut it to at most ``max_chars`` on a sentence boundary.

    A first sentence longer than ``max_chars`` is cut on a word boundary with an ellipsis, within
    ``max_chars`` (so the agent's own cap, at the same length, never cuts a page again).
    """
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() <= max_chars]
    if ends:
        return text[: ends[-1]]
    cut = text[: max(max_chars - 4, 1)].rsplit(" ", 1)[0]
    return cut + " ..."


class LocalWikipedia:
    """A local index as a backend, whichever engine built it (an SQLite file or a Tantivy folder)."""

    name = "local"

    def __init__(self, index: PageIndex | str | Path):
        from araft_lc.wiki.index_engines import open_index

        self.index = index if isinstance(index, PageIndex) else open_index(index)

    def lookup(self, query: str) -> LookupResult:
        # An exact title is the answer, and the observation shows only its text: no BM25 search
        # (which costs most at scale: benchmarks/RESULTS.md).
        exact = self.index.title_match(query)
        if exact is not None:
            return LookupResult(query, exact.title, exact.text)
        hits = self.index.search(query, k=4)
        if not hits:
            return LookupResult(query)
        best = hits[0]
        return LookupResult(query, best.title, best.text, similar=tuple(h.title for h in hits[1:]))


class _Input(BaseModel):
    query: str = Field(description="a page title or a topic to look up")


class WikipediaTool(BaseTool):
    """Looks a query up on Wikipedia and returns the best page's introduction."""

    name: str = "Wikipedia"
    description: str = "returns the introduction of the Wikipedia page that best matches the input"
    args_schema: type[BaseModel] = _Input
    backend: Any
    max_chars: int = 600
    max_query_chars: int = 300  # a title or topic; longer input is cut, not sent whole
    handle_tool_error: bool = True  # a backend failure is returned as the observation

    def observe(self, result: LookupResult) -> str:
        """Render a lookup result as the observation text."""
        if result.may_refer_to:
            return f"{result.title or result.query} may refer to: {', '.join(result.may_refer_to)}."
        if result.text:
            return cut_at_sentence(result.text, self.max_chars)
        similar = f" Similar: {', '.join(result.similar)}." if result.similar else ""
        return f"Could not find [{result.query}].{similar}"

    def _run(self, query: str, run_manager: Any = None) -> str:
        query = " ".join(str(query).split())[: self.max_query_chars]
        if not query:
            return "The query was empty. Give a page title or a topic."
        # A backend failure is an observation, never a crash: one bad call must not end the episode
        # (the original ReAct agent's Wikipedia call crashed here). It is raised as a ToolException
        # that the tool handles itself (handle_tool_error), so a caller that passed a tool call gets a ToolMessage with
        # status "error": the agent counts outages as tool errors.
        try:
            return self.observe(self.backend.lookup(query))
        except Exception as e:
            raise ToolException(
                f"Wikipedia lookup failed ({type(e).__name__}: {e}). Try again or try another query."
            ) from e
