"""Tools from the community around LangChain: langchain-community's WikipediaQueryRun (its
``wikipedia`` package comes with the ``[langchain]`` extra) and tools from an MCP server
(langchain-mcp-adapters, a local stdio server): async-only, with a JSON schema of several
arguments, as MCP tools arrive."""

import asyncio
import sys

import pytest

from helpers import TEST_DATA

adapters = pytest.importorskip("langchain_mcp_adapters.client", reason="pip install -e '.[langchain]'")

from araft_lc.agent.graph import create_araft_agent  # noqa: E402


def test_agent_calls_a_tool_of_a_local_mcp_server(scripted):
    async def run():
        client = adapters.MultiServerMCPClient({"math": {
            "command": sys.executable, "args": [str(TEST_DATA / "mcp_math_server.py")], "transport": "stdio"}})
        tools = await client.get_tools()
        model = scripted(script=['Thought: add them\nAction: [action: add, action_input: {"a": 2, "b": 40}]',
                                 "Thought: done\nAction: [action: Answer, action_input: 42]"])
        agent = create_araft_agent(model, tools, prompt="zeroshot")
        return model, await asyncio.wait_for(agent.ainvoke({"question": "What is 2 + 40?"}), 60)

    model, result = asyncio.run(run())
    assert '[action: add, action_input: {"a": <integer>, "b": <integer>}]: Adds two integers.' in model.prompts[0][0].content
    assert result["steps"][0]["observation"] == "42" and result["steps"][0]["error"] is None
    assert result["answer"] == "42"


def test_wikipedia_query_run_is_usable(scripted):
    community = pytest.importorskip("langchain_community.tools", reason="pip install -e '.[langchain]'")
    from langchain_community.utilities import WikipediaAPIWrapper

    live = community.WikipediaQueryRun(api_wrapper=WikipediaAPIWrapper(top_k_results=1))  # imports `wikipedia`
    model = scripted(script=["Thought: done\nAction: [action: Answer, action_input: Penn]"])
    create_araft_agent(model, [live], prompt="zeroshot").invoke({"question": "Who founded Philadelphia?"})
    assert "[action: wikipedia, action_input: <input>]: A wrapper around Wikipedia." in model.prompts[0][0].content
