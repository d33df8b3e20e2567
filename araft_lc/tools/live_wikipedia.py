"""Live Wikipedia: a thin MediaWiki API client with timeouts, bounded retries and backoff."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

from araft_lc import __version__
from araft_lc.tools.wikipedia import LookupResult

__all__ = ["LiveWikipedia", "WikipediaUnavailable", "DEFAULT_API"]

DEFAULT_API = "https://en.wikipedia.org/w/api.php"
_RETRY_STATUS = {429, 500, 502, 503, 504}


class WikipediaUnavailable(RuntimeError):
    """The API could not be reached or kept failing after the retries."""


class LiveWikipedia:
    """The MediaWiki API as a backend.

    Args:
        api_url: the ``api.php`` endpoint (tests point it at a local server).
        timeout: seconds per HTTP request.
        retries: further tries after a failed request (connection error, 429 or 5xx).
        backoff: base seconds of the exponential backoff between tries (with jitter);
            a ``Retry-After`` header is honoured up to ``max_wait``.
    """

    name = "live"

    def __init__(
        self,
        api_url: str = DEFAULT_API,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_wait: float = 10.0,
        user_agent: Optional[str] = None,
    ):
        self.api_url = api_url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.user_agent = user_agent or (
            f"araft/{__version__} (https://github.com/araft; research agent) python-urllib"
        )

    def _get(self, **params: Any) -> dict[str, Any]:
        query = urllib.parse.urlencode({**params, "format": "json", "formatversion": "2"})
        request = urllib.request.Request(
            f"{self.api_url}?{query}", headers={"User-Agent": self.user_agent}
        )
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            wait = self.backoff * (2**attempt) * (1 + random.random() / 4)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                last = e
                if e.code not in _RETRY_STATUS:
                    raise WikipediaUnavailable(f"HTTP {e.code} from {self.api_url}") from None
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if retry_after and retry_after.isdigit():
                    wait = float(retry_after)
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as e:
                last = e
            if attempt < self.retries:
                time.sleep(min(wait, self.max_wait))
        raise WikipediaUnavailable(
            f"{self.api_url} failed after {self.retries + 1} tries ({type(last).__name__}: {last})"
        )

    def ping(self) -> None:
        """Raise :class:`WikipediaUnavailable` unless the API answers."""
        self._get(action="query", meta="siteinfo")

    def _page(self, title: str) -> Optional[dict[str, Any]]:
        data = self._get(
            action="query", prop="extracts|pageprops", exintro="1", explaintext="1",
            redirects="1", titles=title,
        )
        pages = data.get("query", {}).get("pages", [])
        if not pages or pages[0].get("missing") or pages[0].get("invalid"):
            return None
        return pages[0]

    def _search(self, query: str, limit: int = 4) -> list[str]:
        data = self._get(action="query", list="search", srsearch=query, srlimit=str(limit))
        return [hit["title"] for hit in data.get("query", {}).get("search", [])]

    def lookup(self, query: str) -> LookupResult:
        page = self._page(query)
        similar: list[str] = []
        if page is None:
            similar = self._search(query)
            if not similar:
                return LookupResult(query)
            page = self._page(similar[0])
            if page is None:
                return LookupResult(query, similar=tuple(similar))
        title = page.get("title", query)
        if "disambiguation" in page.get("pageprops", {}):
            links = self._get(action="query", prop="links", titles=title, pllimit="20", plnamespace="0")
            link_pages = links.get("query", {}).get("pages", [{}])
            options = tuple(link["title"] for link in link_pages[0].get("links", []))
            return LookupResult(query, title=title, may_refer_to=options or (title,))
        return LookupResult(
            query, title=title, text=page.get("extract", ""),
            similar=tuple(t for t in similar if t != title),
        )
