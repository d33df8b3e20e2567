"""Wikipedia for the agent: the LangChain tool (``wikipedia``) over a local index or live
MediaWiki (``live_wikipedia``), chosen by ``select``; the readers of HotpotQA and corpus files
(``corpus``) and the index engines that serve them (``index``: SQLite FTS5; ``tantivy_index``;
``index_engines`` picks one)."""

from araft_lc.wiki.live_wikipedia import LiveWikipedia, WikipediaUnavailable
from araft_lc.wiki.wikipedia import (
    LocalWikipedia,
    LookupResult,
    WikipediaBackend,
    WikipediaTool,
    cut_at_sentence,
)

__all__ = [
    "LiveWikipedia",
    "LocalWikipedia",
    "LookupResult",
    "WikipediaBackend",
    "WikipediaTool",
    "WikipediaUnavailable",
    "cut_at_sentence",
]
