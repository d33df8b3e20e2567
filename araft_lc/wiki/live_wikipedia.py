"""Live Wikipedia: a thin MediaWiki API client with timeouts, bounded retries and backoff."""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import random
import time
import urllib.parse
from typing import Any, Optional

from araft_lc.version import __version__
from araft_lc.wiki.wikipedia import LookupResult

__all__ = ["LiveWikipedia", "WikipediaUnavailable", "DEFAULT_API"]

DEFAULT_API = "https://en.wikipedia.org/w/api.php"
_RETRY_STATUS = {429, 500, 502, 503, 504}


class WikipediaUnavailable(RuntimeError):
    """The API could not be reached or kept failing after the retries."""


class _BadResponse(Exception):
    """A response that is not a MediaWiki JSON object (empty, too large, not an object)."""


class _HTTPStatus(Exception):
    def __init__(self, status: int, retry_after: Optional[str]):
        super().__init__(f"HTTP {status}")
        self.status, self.retry_after = status, retry_after


def _retry_after(value: Optional[str], default: float) -> float:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), else ``default``."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


class LiveWikipedia:
    """The MediaWiki API as a backend.

    Every call is bounded: ``call_timeout`` seconds in all (tries, waits and slow bodies
    together) and ``max_bytes`` of response. What goes wrong becomes ``WikipediaUnavailable``,
    which the tool turns into an observation.

    Args:
        api_url: the ``api.php`` endpoint (tests point it at a local server).
        timeout: seconds per socket operation of one request.
        retries: further tries after a failed request (connection error, bad body, 429 or 5xx).
        backoff: base seconds of the exponential backoff between tries (with jitter);
            a ``Retry-After`` header (seconds or an HTTP date) is honoured; one asking for more
            than ``max_wait`` ends the call.
        call_timeout: the hard limit, in seconds, on one API call with all its tries.
        max_bytes: a longer response is refused (an intro extract is a few kB).
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
        call_timeout: float = 30.0,
        max_bytes: int = 2 << 20,
        user_agent: Optional[str] = None,
    ):
        self.api_url = api_url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.call_timeout = call_timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent or (f"araft/{__version__} (https://github.com/araft; research agent)")

    def _fetch(self, url: str, deadline: float) -> dict[str, Any]:
        """One GET of ``url`` as a JSON object; every blocking socket operation is given at most
        the time left before ``deadline``, so a slow or trickling server cannot outlast it."""
        parts = urllib.parse.urlsplit(url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection

        def left() -> float:
            seconds = deadline - time.monotonic()
            if seconds <= 0:
                raise TimeoutError(f"no answer within {self.call_timeout} s")
            return min(self.timeout, seconds)

        connection = connection_class(parts.hostname or "", parts.port, timeout=left())
        try:
            connection.request("GET", f"{parts.path}?{parts.query}", headers={"User-Agent": self.user_agent})
            sock = connection.sock  # kept: getresponse() drops it from the connection
            sock.settimeout(left())
            response = connection.getresponse()
            if response.status != 200:
                raise _HTTPStatus(response.status, response.getheader("Retry-After"))
            chunks, size = [], 0
            while True:
                sock.settimeout(left())
                chunk = response.read1(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise _BadResponse(f"response larger than {self.max_bytes} bytes")
                chunks.append(chunk)
        finally:
            connection.close()
        body = b"".join(chunks)
        if not body.strip():
            raise _BadResponse("empty response body")
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise _BadResponse(f"expected a JSON object, got {type(data).__name__}")
        return data

    def _get(self, **params: Any) -> dict[str, Any]:
        url = f"{self.api_url}?{urllib.parse.urlencode({**params, 'format': 'json', 'formatversion': '2'})}"
        deadline = time.monotonic() + self.call_timeout
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            wait = self.backoff * (2**attempt) * (1 + random.random() / 4)
            try:
                return self._fetch(url, deadline)
            except _HTTPStatus as e:
                last = e
                if e.status not in _RETRY_STATUS:
                    hint = " (redirects are not followed: give the api.php URL itself)" if 300 <= e.status < 400 else ""
                    raise WikipediaUnavailable(f"HTTP {e.status} from {self.api_url}{hint}") from None
                wait = _retry_after(e.retry_after, default=wait)
            except (OSError, ValueError, http.client.HTTPException, _BadResponse) as e:
                # Refused, reset or timed out (OSError); bad JSON or UTF-8 (ValueError); a torn
                # response (IncompleteRead, BadStatusLine); an empty or oversized body.
                last = e
            # Retrying sooner than Retry-After asks would not be honouring it: a longer wait
            # than max_wait, or than the call has left, ends the call now.
            if attempt == self.retries or wait > self.max_wait or time.monotonic() + wait >= deadline:
                break
            time.sleep(wait)
        raise WikipediaUnavailable(
            f"{self.api_url} failed after {attempt + 1} tries within {self.call_timeout} s "
            f"({type(last).__name__}: {last})"
        )

    def ping(self) -> None:
        """Raise :class:`WikipediaUnavailable` unless the API answers."""
        self._get(action="query", meta="siteinfo")

    def _page(self, title: str) -> Optional[dict[str, Any]]:
        data = self._get(
            action="query",
            prop="extracts|pageprops",
            exintro="1",
            explaintext="1",
            redirects="1",
            titles=title,
        )
        pages = data.get("query", {}).get("pages", [])
        if not pages or pages[0].get("missing") or pages[0].get("invalid"):
            return None
        return pages[0]

    def _search(self, query: str, limit: int = 4) -> list[str]:
        data = self._get(action="query", list="search", srsearch=query, srlimit=str(limit))
        return [hit["title"] for hit in data.get("query", {}).get("search", [])]

    def lookup(self, query: str) -> LookupResult:
        try:
            return self._lookup(query)
        except (AttributeError, KeyError, IndexError, TypeError) as e:
            # JSON of the wrong shape (a proxy's error object, a changed API): not a crash.
            raise WikipediaUnavailable(f"unexpected response from {self.api_url} ({type(e).__name__}: {e})") from None

    def _lookup(self, query: str) -> LookupResult:
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
            query,
            title=title,
            text=page.get("extract", ""),
            similar=tuple(t for t in similar if t != title),
        )
