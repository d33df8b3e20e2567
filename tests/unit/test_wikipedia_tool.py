"""The Wikipedia tool over both backends; live is tested against a local MediaWiki-shaped server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from araft_lc.wiki.live_wikipedia import LiveWikipedia, WikipediaUnavailable
from araft_lc.wiki.select import resolve_index, wikipedia_tool
from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool, cut_at_sentence

PAGES = {
    "Lucca": {"title": "Lucca", "extract": "Lucca is a city in Tuscany.  It is known for its walls.", "pageprops": {}},
    "Mercury": {"title": "Mercury", "extract": "Mercury may refer to:", "pageprops": {"disambiguation": ""}},
}
SEARCH = {"walled city tuscany": ["Lucca", "Tuscany"]}
LINKS = {"Mercury": ["Mercury (planet)", "Mercury (element)", "Mercury (mythology)"]}


class FakeMediaWiki(BaseHTTPRequestHandler):
    """Answers the three API calls the backend makes, with faults on demand."""

    faults: list = []  # consumed one per request: an HTTP status, "slow", or None

    def log_message(self, *args):
        pass

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self):
        assert self.headers["User-Agent"].startswith("araft/")
        fault = self.faults.pop(0) if self.faults else None
        if fault == "slow":
            time.sleep(1.0)
        elif fault == 429:
            return self._send(429, "slow down", [("Retry-After", "0")])
        elif isinstance(fault, int):
            return self._send(fault, "error")
        q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        if q.get("list") == "search":
            hits = [{"title": t} for t in SEARCH.get(q["srsearch"].lower(), [])]
            return self._send(200, json.dumps({"query": {"search": hits}}))
        if q.get("prop") == "links":
            links = [{"title": t} for t in LINKS.get(q["titles"], [])]
            return self._send(200, json.dumps({"query": {"pages": [{"title": q["titles"], "links": links}]}}))
        if q.get("meta") == "siteinfo":
            return self._send(200, json.dumps({"query": {"general": {}}}))
        page = PAGES.get(q.get("titles", ""), {"title": q.get("titles"), "missing": True})
        self._send(200, json.dumps({"query": {"pages": [page]}}))


@pytest.fixture
def wiki_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeMediaWiki)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeMediaWiki.faults = []
    yield f"http://127.0.0.1:{server.server_address[1]}/w/api.php"
    server.shutdown()


def live_tool(url, **kw):
    return WikipediaTool(backend=LiveWikipedia(url, backoff=0.01, **kw))


def test_live_page_search_and_disambiguation(wiki_server):
    tool = live_tool(wiki_server)
    assert tool.invoke("Lucca") == "Lucca is a city in Tuscany. It is known for its walls."
    assert tool.invoke("walled city Tuscany") == "Lucca is a city in Tuscany. It is known for its walls."
    assert tool.invoke("Mercury") == ("Mercury may refer to: Mercury (planet), Mercury (element), Mercury (mythology).")
    assert tool.invoke("zzz nothing") == "Could not find [zzz nothing]."


def test_live_retries_then_succeeds(wiki_server):
    FakeMediaWiki.faults = [503, 429]
    assert live_tool(wiki_server).invoke("Lucca").startswith("Lucca is a city")


def test_live_failure_is_an_observation_not_an_exception(wiki_server):
    FakeMediaWiki.faults = [500, 500, 500]
    observation = live_tool(wiki_server, retries=2).invoke("Lucca")
    assert observation.startswith("Wikipedia lookup failed (WikipediaUnavailable")


def test_live_timeout_is_bounded(wiki_server):
    # Each answer takes 1 s; the client waits 0.2 s a try, tries twice, then says so. Bounded by
    # count (two tries, both timed out), not by a wall-time threshold.
    FakeMediaWiki.faults = ["slow", "slow", "slow"]
    observation = live_tool(wiki_server, timeout=0.2, retries=1).invoke("Lucca")
    assert observation.startswith("Wikipedia lookup failed") and "timed out" in observation
    assert FakeMediaWiki.faults == ["slow"]  # exactly two requests were made


def test_unreachable_live_says_what_to_do():
    with pytest.raises(WikipediaUnavailable, match="pass --corpus FILE"):
        wikipedia_tool(live_api="http://127.0.0.1:9/w/api.php", check_live=True)


def test_local_observation_and_similar(mini_index):
    tool = WikipediaTool(backend=LocalWikipedia(mini_index), max_chars=100)
    assert tool.invoke("Arthur's Magazine") == (
        "Arthur's Magazine was a literary periodical published in Philadelphia from 1844 to 1846."
    )
    assert tool.invoke("nothing matches qqq") == "Could not find [nothing matches qqq]."
    assert tool.invoke("   ") == "The query was empty. Give a page title or a topic."


def test_cut_at_sentence():
    assert cut_at_sentence("One. Two three. Four.", 16) == "One. Two three."
    assert cut_at_sentence("A   b\n c", 100) == "A b c"
    assert cut_at_sentence("averyveryverylongword and more words", 25) == "averyveryverylongword ..."


def test_source_file_is_indexed_once_into_the_cache(tmp_path):
    from helpers import MINI_CORPUS

    first = resolve_index(MINI_CORPUS, quiet=True)
    mtime = first.stat().st_mtime_ns
    assert resolve_index(MINI_CORPUS, quiet=True) == first
    assert first.stat().st_mtime_ns == mtime
    assert resolve_index(first) == first  # an index is used as it is
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_index(tmp_path / "missing.jsonl")
