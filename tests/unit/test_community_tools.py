"""Tools from the community around LangChain: langchain-community's WikipediaQueryRun (its
``wikipedia`` package comes with the ``[langchain]`` extra), against a MediaWiki-shaped server on
127.0.0.1, and tools from an MCP server
(langchain-mcp-adapters, a local stdio server): async-only, with a JSON schema of several
arguments, as MCP tools arrive."""

import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import TEST_DATA

adapters = pytest.importorskip("langchain_mcp_adapters.client", reason="pip install -e '.[langchain]'")

from araft_lc.agent.graph import create_araft_agent  # noqa: E402


def test_agent_calls_a_tool_of_a_local_mcp_server(scripted):
    async def run():
        client = adapters.MultiServerMCPClient(
            {"math": {"command": sys.executable, "args": [str(TEST_DATA / "mcp_math_server.py")], "transport": "stdio"}}
        )
        tools = await client.get_tools()
        model = scripted(
            script=[
                'Thought: add them\nAction: [action: add, action_input: {"a": 2, "b": 40}]',
                "Thought: done\nAction: [action: Answer, action_input: 42]",
            ]
        )
        agent = create_araft_agent(model, tools, prompt="zeroshot")
        return model, await asyncio.wait_for(agent.ainvoke({"question": "What is 2 + 40?"}), 60)

    model, result = asyncio.run(run())
    assert (
        '[action: add, action_input: {"a": <integer>, "b": <integer>}]: Adds two integers.'
        in model.prompts[0][0].content
    )
    assert result["steps"][0]["observation"] == "42" and result["steps"][0]["error"] is None
    assert result["answer"] == "42"


class _MediaWikiV1(BaseHTTPRequestHandler):
    """The three MediaWiki API calls the ``wikipedia`` package makes for one summary (search, page
    info, intro extract), answered in the API's default JSON shape (formatversion 1)."""

    asked: list[dict[str, str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}
        self.asked.append(params)
        if params.get("list") == "search":
            body: dict[str, Any] = {"query": {"search": [{"title": "Philadelphia"}]}}
        elif params.get("prop") == "extracts":
            body = {"query": {"pages": {"50585": {"pageid": 50585, "title": "Philadelphia", "extract": SUMMARY}}}}
        else:  # prop=info|pageprops: the page is there, not a redirect or a disambiguation page
            body = {
                "query": {
                    "pages": {
                        "50585": {
                            "pageid": 50585,
                            "title": "Philadelphia",
                            "fullurl": "https://en.wikipedia.org/wiki/Philadelphia",
                        }
                    }
                }
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


SUMMARY = "Philadelphia is the largest city in Pennsylvania. It was founded by William Penn in 1682."


def test_wikipedia_query_run_answers_through_the_agent(scripted, monkeypatch):
    community = pytest.importorskip("langchain_community.tools", reason="pip install -e '.[langchain]'")
    import wikipedia
    from langchain_community.utilities import WikipediaAPIWrapper

    server = ThreadingHTTPServer(("127.0.0.1", 0), _MediaWikiV1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _MediaWikiV1.asked = []
    try:
        live = community.WikipediaQueryRun(api_wrapper=WikipediaAPIWrapper(top_k_results=1))
        # after the wrapper, whose set_lang() sets the address again
        monkeypatch.setattr(wikipedia.wikipedia, "API_URL", f"http://127.0.0.1:{server.server_port}/w/api.php")
        model = scripted(
            script=[
                "Thought: look it up\nAction: [action: wikipedia, action_input: Philadelphia]",
                "Thought: done\nAction: [action: Answer, action_input: William Penn]",
            ]
        )
        result = create_araft_agent(model, [live], prompt="zeroshot").invoke({"question": "Who founded Philadelphia?"})
    finally:
        server.shutdown()
    assert "[action: wikipedia, action_input: <input>]: A wrapper around Wikipedia." in model.prompts[0][0].content
    step = result["steps"][0]
    assert step["error"] is None and step["observation"] == f"Page: Philadelphia Summary: {SUMMARY}"
    assert [p.get("list") or p.get("prop") for p in _MediaWikiV1.asked] == ["search", "info|pageprops", "extracts"]
    assert result["answer"] == "William Penn"
