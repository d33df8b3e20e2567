"""The agent as a LangGraph user meets it: threads, checkpoints, schemas, any tool, limits."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
from helpers import act, answer
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import StructuredTool, tool
from langgraph.checkpoint.memory import InMemorySaver

from araft_lc.agent.graph import create_araft_agent
from araft_lc.wiki.wikipedia import WikipediaTool


@tool
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


def test_three_turns_on_a_thread_each_a_new_question(scripted, wiki):
    model = scripted(script=[act("Wikipedia", "Philadelphia"), answer("William Penn"), answer("1682"), answer("yes")])
    agent = create_araft_agent(model, [wiki], checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t1"}}
    first = agent.invoke({"messages": [HumanMessage("Who founded Philadelphia?")]}, thread)
    second = agent.invoke({"messages": [HumanMessage("When was it founded?")]}, thread)
    third = agent.invoke({"question": "Is it in Pennsylvania?"}, thread)
    assert [r["question"] for r in (first, second, third)] == [
        "Who founded Philadelphia?",
        "When was it founded?",
        "Is it in Pennsylvania?",
    ]
    assert [r["answer"] for r in (first, second, third)] == ["William Penn", "1682", "yes"]
    # Each question has its own scratchpad; the conversation keeps every turn.
    assert [len(r["steps"]) for r in (first, second, third)] == [2, 1, 1]
    assert "Who founded" not in model.prompts[2][1].content and "When was it founded?" in model.prompts[2][1].content
    assert [m.type for m in third["messages"]] == ["human", "ai"] * 3
    assert [m.content for m in third["messages"][1::2]] == ["William Penn", "1682", "yes"]
    # A turn that brings no new question is refused, not answered with the old one.
    with pytest.raises(ValueError, match="question is empty"):
        agent.invoke({"messages": []}, thread)


def test_output_is_public_and_json(scripted, wiki):
    agent = create_araft_agent(scripted(script=[act("Wikipedia", "Philadelphia"), answer("Penn")]), [wiki])
    result = agent.invoke({"question": "q?"})
    assert set(result) == {"messages", "question", "answer", "status", "steps"}
    json.dumps(result["steps"])  # plain data
    assert result["steps"][0]["observation"].startswith("Philadelphia")
    assert set(agent.get_input_jsonschema()["properties"]) == {"question", "messages"}


def test_checkpoints_serialise_under_strict_msgpack(scripted, wiki, tmp_path):
    # Strict msgpack is read when langgraph is imported: a fresh interpreter, warnings as errors.
    code = f"""
import warnings; warnings.simplefilter("error")
import sys; sys.path.insert(0, {str(os.path.dirname(os.path.dirname(__file__)))!r})
from helpers import ScriptedChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from araft_lc.agent.graph import create_araft_agent
from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool
saver = InMemorySaver()
wiki = WikipediaTool(backend=LocalWikipedia({str(wiki.backend.index.path)!r}))
model = ScriptedChatModel(script=["Thought: t\\nAction: [action: Wikipedia, action_input: Philadelphia]",
                                  "Thought: t\\nAction: [action: Answer, action_input: Penn]"])
agent = create_araft_agent(model, [wiki], checkpointer=saver)
cfg = {{"configurable": {{"thread_id": "x"}}}}
agent.invoke({{"question": "q?"}}, cfg)
agent.invoke({{"messages": [HumanMessage("again?")]}}, cfg)
state = agent.get_state(cfg).values
assert state["steps"][0]["action"] == "Answer", state["steps"]
for snapshot in agent.get_state_history(cfg):
    snapshot.values
print("ok")
"""
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_bare_string_input_is_a_clear_error(scripted, wiki):
    agent = create_araft_agent(scripted(script=[answer("x")]), [wiki])
    with pytest.raises(TypeError, match=r"takes a dict, not a string: invoke\(\{'question'"):
        agent.invoke("Who founded Philadelphia?")


def test_agent_as_a_tool_hands_back_the_answer(scripted, wiki):
    agent = create_araft_agent(scripted(script=[answer("Penn")]), [wiki])
    as_tool = agent.as_tool(name="araft", description="answers questions from Wikipedia")
    assert as_tool.name == "araft" and set(as_tool.args) == {"question"}
    assert as_tool.invoke({"question": "Who founded Philadelphia?"}) == "Penn"
    # As a model's tool call: the answer is the message's content, the whole output its artifact.
    message = as_tool.invoke(
        {"type": "tool_call", "id": "c1", "name": "araft", "args": {"question": "Who founded Philadelphia?"}}
    )
    assert message.content == "Penn" and message.tool_call_id == "c1"
    assert message.artifact["status"] == "answered" and message.artifact["steps"][0]["action"] == "Answer"


def test_agent_as_a_tool_says_why_a_run_has_no_answer(scripted, wiki):
    agent = create_araft_agent(scripted(script=[act("Wikipedia", "Philadelphia")]), [wiki], max_steps=2)
    reply = agent.as_tool().invoke({"question": "Who founded Philadelphia?"})
    assert reply == "No answer (step_limit): the run ended with status step_limit after 2 steps."


def test_a_supervisor_agent_receives_the_answer(scripted, wiki):
    """Araft as a sub-agent of LangChain's create_agent: the supervisor's model reads the answer."""
    agents = pytest.importorskip("langchain.agents", reason="pip install -e '.[langchain]'")
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Supervisor(BaseChatModel):  # a tool-calling model at the edge of the world, scripted
        seen: list = []

        @property
        def _llm_type(self) -> str:
            return "supervisor"

        def bind_tools(self, tools, **kwargs):
            return self

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            self.seen.append(messages)
            replies = [m for m in messages if isinstance(m, ToolMessage)]
            message = (
                AIMessage(f"Araft says: {replies[-1].content}")
                if replies
                else AIMessage(
                    "",
                    tool_calls=[{"name": "araft", "args": {"question": "Who founded Philadelphia?"}, "id": "call_1"}],
                )
            )
            return ChatResult(generations=[ChatGeneration(message=message)])

    araft = create_araft_agent(scripted(script=[act("Wikipedia", "Philadelphia"), answer("William Penn")]), [wiki])
    boss = Supervisor()
    app = agents.create_agent(boss, [araft.as_tool(name="araft", description="answers questions from Wikipedia")])
    result = app.invoke({"messages": [HumanMessage("Ask araft who founded Philadelphia.")]})
    [reply] = [m for m in boss.seen[-1] if isinstance(m, ToolMessage)]
    assert reply.content == "William Penn" and reply.artifact["steps"][0]["action"] == "Wikipedia"
    assert result["messages"][-1].content == "Araft says: William Penn"


async def test_agent_as_a_tool_async(scripted, wiki):
    agent = create_araft_agent(scripted(script=[answer("Penn")]), [wiki])
    assert await agent.as_tool().ainvoke({"question": "Who founded Philadelphia?"}) == "Penn"


def test_multi_argument_tool(scripted):
    model = scripted(
        script=[act("add", '{"a": 2, "b": 40}'), act("add", "2 and 40"), act("add", '{"a": "x", "b": 1}'), answer("42")]
    )
    result = create_araft_agent(model, [add], prompt="zeroshot").invoke({"question": "2+40?"})
    assert (
        '[action: add, action_input: {"a": <integer>, "b": <integer>}]: Adds two integers.'
        in model.prompts[0][0].content
    )
    good, not_json, bad_type, _ = result["steps"]
    assert good["observation"] == "42" and good["error"] is None
    assert (
        not_json["observation"]
        == 'The tool add takes a JSON object {"a": <integer>, "b": <integer>}, not \'2 and 40\'.'
    )
    assert bad_type["error"] == "tool_error"
    assert bad_type["observation"].startswith('The tool add takes {"a": <integer>, "b": <integer>}: a ')
    assert result["answer"] == "42"


async def _lookup(query: str) -> str:
    await asyncio.sleep(0)
    return f"async page about {query}"


ASYNC_ONLY = StructuredTool.from_function(coroutine=_lookup, name="Lookup", description="looks a topic up")


def test_async_only_tool_under_ainvoke_astream_and_invoke(scripted):
    def agent():
        return create_araft_agent(
            scripted(script=[act("Lookup", "Penn"), answer("ok")]), [ASYNC_ONLY], prompt="zeroshot"
        )

    result = asyncio.run(agent().ainvoke({"question": "q?"}))
    assert result["steps"][0]["observation"] == "async page about Penn"

    async def nodes():
        return [next(iter(u)) async for u in agent().astream({"question": "q?"}, stream_mode="updates")]

    assert asyncio.run(nodes()) == ["start", "reason", "act", "reason"]
    assert agent().invoke({"question": "q?"})["steps"][0]["observation"] == "async page about Penn"


def test_examples_with_missing_tools_are_left_out(scripted, wiki):
    calc_only = scripted(script=[answer("5")])
    create_araft_agent(calc_only, [add]).invoke({"question": "2+3?"})
    system = calc_only.prompts[0][0].content
    assert "Wikipedia" not in system and "Here are some examples" not in system
    both = scripted(script=[answer("5")])
    create_araft_agent(both, [wiki, add]).invoke({"question": "2+3?"})
    assert (
        both.prompts[0][0].content.count("[action: Wikipedia, action_input: ") == 8
    )  # 1 tool line + 7 in the examples


def test_recursion_limit_ends_with_a_status(scripted, wiki):
    agent = create_araft_agent(scripted(script=[act("Wikipedia", "Philadelphia")]), [wiki], max_steps=20)
    result = agent.invoke({"question": "q?"}, {"recursion_limit": 6})
    assert result["status"] == "recursion_limit"
    assert result["messages"][-1].content.startswith("No answer: LangGraph's recursion_limit")
    assert len(result["steps"]) == 2


def test_backend_outage_is_a_tool_error(scripted):
    class Down:
        name = "down"

        def lookup(self, query):
            raise ConnectionError("no route to host")

    model = scripted(script=[act("Wikipedia", "Philadelphia"), answer("x")])
    result = create_araft_agent(model, [WikipediaTool(backend=Down())]).invoke({"question": "q?"})
    step = result["steps"][0]
    assert step["error"] == "tool_error"
    assert step["observation"] == (
        "Wikipedia lookup failed (ConnectionError: no route to host). Try again or try another query."
    )
