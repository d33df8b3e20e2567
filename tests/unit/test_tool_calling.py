"""AraftChatModel as a LangChain chat model: the standard surface, tool calling in the Araft
grammar (langchain's ``create_agent`` and LangGraph's ``ToolNode``), structured output."""

from typing import Any, Optional

import pytest
from helpers import scripted_araft
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, ValidationError

from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.chat.tool_calling import react_prompt, read_reply, tool_specs
from araft_lc.react.prompt import load_prompt
from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool

QUESTION = [HumanMessage("Who founded Philadelphia?")]


@tool
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@pytest.fixture(scope="module")
def chat(tiny_llama):
    return AraftChatModel(model_id=str(tiny_llama), max_new_tokens=24)


def scripted(*texts: str, **fields: Any) -> AraftChatModel:
    """AraftChatModel over a scripted LM (``helpers.ScriptedLM``): its n-th call writes the
    tokens of ``texts[n]`` (the last again after that). Everything above the tokens is ours."""
    calls: list[str] = []

    def reply(prompt: str) -> str:
        calls.append(prompt)
        return texts[min(len(calls) - 1, len(texts) - 1)]

    return scripted_araft(reply, **fields)


def seen(model: AraftChatModel) -> list[str]:
    """The prompt text of each of ``model``'s calls, as its LM read it."""
    return model.engine.model.prompts


# -- the standard surface ---------------------------------------------------------------------


def test_max_tokens_everywhere(chat, tiny_llama):
    def out_tokens(message):
        return message.usage_metadata["output_tokens"]

    assert AraftChatModel(model_id=str(tiny_llama), max_tokens=3).max_new_tokens == 3
    assert out_tokens(AraftChatModel(model_id=str(tiny_llama), max_tokens=3).invoke(QUESTION)) <= 3
    assert out_tokens(chat.invoke(QUESTION, max_tokens=3)) <= 3
    assert out_tokens(chat.bind(max_new_tokens=2).invoke(QUESTION)) <= 2
    assert out_tokens(chat.invoke(QUESTION)) > 3  # the random model runs on without a cap


def test_unknown_arguments_are_refused(chat, tiny_llama):
    with pytest.raises(ValidationError, match="bogus_kw"):
        AraftChatModel(model_id=str(tiny_llama), bogus_kw=1)
    with pytest.raises(TypeError, match="does not take bogus_kw"):
        chat.invoke(QUESTION, bogus_kw=1)


def test_per_call_temperature_and_stop(chat):
    greedy = chat.invoke(QUESTION).content
    assert chat.invoke(QUESTION, temperature=1.5, seed=3).content != greedy
    cut = greedy[3:6]
    assert cut not in chat.invoke(QUESTION, stop=[cut]).content


def test_ls_params_name_the_model(chat, tiny_llama):
    params = chat._get_ls_params(stop=["Observation:"])
    assert params == {
        "ls_provider": "araft",
        "ls_model_type": "chat",
        "ls_model_name": tiny_llama.name,
        "ls_temperature": 0.0,
        "ls_max_tokens": 24,
        "ls_stop": ["Observation:"],
    }
    assert chat._get_ls_params(model="other", max_tokens=5)["ls_max_tokens"] == 5


def test_usage_on_the_last_streamed_chunk(chat):
    chunks = list(chat.stream(QUESTION))
    assert all(c.usage_metadata is None for c in chunks[:-1])
    full = sum(chunks[1:], chunks[0])
    invoked = chat.invoke(QUESTION)
    assert full.content == invoked.content
    assert full.usage_metadata == invoked.usage_metadata


# -- tool calling ---------------------------------------------------------------------------


def test_conversation_renders_as_the_araft_scratchpad(mini_index):
    wiki = WikipediaTool(backend=LocalWikipedia(mini_index))
    specs = tool_specs([wiki, add])
    history = [
        SystemMessage("Be brief."),
        HumanMessage("Who founded Philadelphia?"),
        AIMessage(
            "Thought: look it up", tool_calls=[{"name": "Wikipedia", "args": {"query": "Philadelphia"}, "id": "c1"}]
        ),
        ToolMessage("Philadelphia was founded by William Penn.", tool_call_id="c1"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c2"}]),
        ToolMessage("3", tool_call_id="c2"),
    ]
    system, user = react_prompt(load_prompt("zeroshot"), specs, history)
    assert system.content.startswith("Be brief.\n\nAnswer the question by interleaving")
    assert '[action: add, action_input: {"a": <integer>, "b": <integer>}]: Adds two integers.' in system.content
    assert user.content == (
        "Question: Who founded Philadelphia?\n"
        "Thought: look it up\nAction: [action: Wikipedia, action_input: Philadelphia]\n"
        "Observation: Philadelphia was founded by William Penn.\n"
        'Thought: \nAction: [action: add, action_input: {"a": 1, "b": 2}]\nObservation: 3'
    )


def test_replies_become_tool_calls_or_the_answer():
    specs = tool_specs([add])
    message, failed = read_reply('Thought: sum\nAction: [action: add, action_input: {"a": 1, "b": 2}]', specs)
    assert (
        failed is None and message.tool_calls[0]["name"] == "add" and message.tool_calls[0]["args"] == {"a": 1, "b": 2}
    )
    message, _ = read_reply("Thought: done\nAction: [action: Answer, action_input: 3]", specs)
    assert message.content == "3" and not message.tool_calls
    _, failed = read_reply("Thought: sum\nAction: [action: add, action_input: one and two]", specs)
    assert failed.error == "tool_error" and "takes a JSON object" in failed.observation
    _, failed = read_reply("just text", specs)
    assert failed.error == "parse_error"


def test_create_agent_runs_a_react_model_with_tool_node(mini_index):
    from langchain.agents import create_agent

    wiki = WikipediaTool(backend=LocalWikipedia(mini_index))
    model = scripted(
        "Thought: find the city\nAction: [action: Wikipedia, action_input: Philadelphia]\nObservation: (invented)",
        'Thought: add\nAction: [action: add, action_input: {"a": 1600, "b": 82}]',
        "Thought: done\nAction: [action: Answer, action_input: William Penn, 1682]",
        prompt="zeroshot",
    )
    agent = create_agent(model, [wiki, add])
    result = agent.invoke({"messages": [HumanMessage("Who founded Philadelphia, and when?")]})
    types = [m.type for m in result["messages"]]
    assert types == ["human", "ai", "tool", "ai", "tool", "ai"]
    assert result["messages"][2].content.startswith("Philadelphia is the largest city")
    assert result["messages"][4].content == "1682"
    assert result["messages"][-1].content == "William Penn, 1682"
    last_prompt = seen(model)[-1]
    assert "Observation: Philadelphia is the largest city" in last_prompt and "(invented)" not in last_prompt
    assert result["messages"][1].response_metadata["raw"].endswith("action_input: Philadelphia]\n")
    assert 'Action: [action: add, action_input: {"a": 1600, "b": 82}]\nObservation: 1682' in last_prompt


def test_unusable_output_is_retried_then_returned(mini_index):
    model = scripted(
        "no action here",
        "Thought: t\nAction: [action: add, action_input: 1 and 2]",
        "Thought: t\nAction: [action: Answer, action_input: 3]",
        max_parse_retries=2,
    )
    reply = model.bind_tools([add]).invoke(QUESTION)
    assert reply.content == "3" and len(seen(model)) == 3
    assert "no action here\nObservation: No action found" in seen(model)[1]
    assert reply.usage_metadata["input_tokens"] == sum(len(model.get_token_ids(p)) for p in seen(model))
    stuck = scripted("no action here", max_parse_retries=1)
    reply = stuck.bind_tools([add]).invoke(QUESTION)
    assert reply.content == "no action here" and not reply.tool_calls and len(seen(stuck)) == 2
    assert reply.response_metadata["araft_error"].startswith("No action found")


def test_tool_calls_stream_as_one_chunk():
    model = scripted('Thought: add\nAction: [action: add, action_input: {"a": 1, "b": 2}]')
    chunks = list(model.bind_tools([add]).stream(QUESTION))
    assert len(chunks) == 1 and chunks[0].tool_calls[0]["args"] == {"a": 1, "b": 2}


def test_create_agent_on_a_real_tiny_llama(tiny_llama, mini_index):
    from langchain.agents import create_agent

    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=8, max_parse_retries=1)
    agent = create_agent(model, [WikipediaTool(backend=LocalWikipedia(mini_index)), add])
    result = agent.invoke({"messages": [HumanMessage("Who founded Philadelphia?")]})
    assert result["messages"][-1].type == "ai"  # random weights: unparsed, so the loop ends with its text


# -- structured output ----------------------------------------------------------------------


class Person(BaseModel):
    name: str
    born: Optional[int] = None


def test_structured_output_parses_json_and_retries():
    model = scripted("I think it is Penn.", 'Sure: ```json\n{"name": "William Penn", "born": 1644}\n```')
    assert model.with_structured_output(Person).invoke(QUESTION) == Person(name="William Penn", born=1644)
    assert "must match this JSON schema" in seen(model)[0]
    assert "That was not right: the reply holds no JSON object" in seen(model)[1]
    raw = scripted("never JSON", max_parse_retries=0).with_structured_output(Person, include_raw=True).invoke(QUESTION)
    assert raw["parsed"] is None and raw["parsing_error"] is not None and raw["raw"].content == "never JSON"
    as_dict = scripted('{"name": "Penn"}').with_structured_output(Person.model_json_schema()).invoke(QUESTION)
    assert as_dict == {"name": "Penn"}
