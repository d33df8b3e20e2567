"""LangChain tools of the agent: Wikipedia first, with a live and a local backend."""

from araft_lc.tools.wikipedia import (
    LocalWikipedia,
    LookupResult,
    WikipediaBackend,
    WikipediaTool,
    cut_at_sentence,
)
from araft_lc.tools.live_wikipedia import LiveWikipedia, WikipediaUnavailable

__all__ = [
    "LiveWikipedia",
    "LocalWikipedia",
    "LookupResult",
    "WikipediaBackend",
    "WikipediaTool",
    "WikipediaUnavailable",
    "cut_at_sentence",
]
