import asyncio

import pytest
from helpers import act, answer
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from araft_lc.agent.graph import create_araft_agent


def search(q: str) -> str:
    return act("Wikipedia", q, thought=f"look up {q}")


def test_answer_after_searches(scripted, wiki):
    model = scripted(script=[search("Arthur's Magazine"), search("First for Women"), answer("Arthur's Magazine")])
    result = create_araft_agent(model, [wiki]).invoke({"question": "Which magazine was started first?"})
    assert result["status"] == "answered"
    assert result["answer"] == "Arthur's Magazine"
    assert [s["action"] for s in result["steps"]] == ["Wikipedia", "Wikipedia", "Answer"]
    assert result["steps"][0]["observation"].startswith("Arthur's Magazine was a literary periodical")
    # The model saw the first observation in its next prompt, and was told to stop at Observation:.
    assert "Observation: Arthur's Magazine was a literary periodical" in model.prompts[1][1].content
    assert model.stops[0] == ["Observation:"]
    assert isinstance(result["messages"][-1], AIMessage)
    assert result["messages"][-1].content == "Arthur's Magazine"


def test_turns_layout_runs_on_a_real_model(tiny_llama, wiki):
    from araft_lc.chat.chat_model import AraftChatModel

    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=8)
    result = create_araft_agent(model, [wiki], prompt="zeroshot_turns", max_steps=2).invoke({"question": "q?"})
    assert len(result["steps"]) == 2  # random weights: two unparsed steps, each a turn of its own


def test_turns_layout_prompts_grow_by_turns(scripted, wiki):
    model = scripted(script=[search("Philadelphia"), answer("William Penn")])
    result = create_araft_agent(model, [wiki], prompt="zeroshot_turns").invoke({"question": "Who founded it?"})
    assert result["answer"] == "William Penn"
    first, second = model.prompts
    assert second[: len(first)] == first
    assert [m.type for m in second[len(first) :]] == ["ai", "human"]
    assert second[-1].content.startswith("Observation: Philadelphia is the largest city")


def test_step_limit(scripted, wiki):
    model = scripted(script=[search("Philadelphia")])
    result = create_araft_agent(model, [wiki], max_steps=3).invoke({"question": "q?"})
    assert result["status"] == "step_limit"
    assert len(result["steps"]) == 3 and len(model.prompts) == 3
    assert result["answer"] is None
    assert result["messages"][-1].content.startswith("No answer")


def test_parse_error_is_an_observation_and_counts(scripted, wiki):
    model = scripted(script=["I think it is Paris.", answer("Paris")])
    result = create_araft_agent(model, [wiki]).invoke({"question": "q?"})
    assert result["status"] == "answered"
    first = result["steps"][0]
    assert first["error"] == "parse_error" and first["action"] is None
    assert "I think it is Paris.\nObservation: No action found" in model.prompts[1][1].content


def test_parse_errors_until_the_cap(scripted, wiki):
    model = scripted(script=["nonsense"])
    result = create_araft_agent(model, [wiki], max_steps=2).invoke({"question": "q?"})
    assert result["status"] == "parse_error"
    assert len(result["steps"]) == 2


def test_unknown_tool(scripted, wiki):
    model = scripted(script=["Thought: t\nAction: [action: Google, action_input: x]", answer("x")])
    result = create_araft_agent(model, [wiki]).invoke({"question": "q?"})
    step = result["steps"][0]
    assert step["error"] == "unknown_tool"
    assert step["observation"] == "There is no tool named Google. Use one of: Wikipedia, Answer."


def test_tool_exception_becomes_an_observation(scripted):
    @tool
    def Broken(query: str) -> str:
        """always fails"""
        raise ConnectionError("socket closed")

    model = scripted(script=["Thought: t\nAction: [action: broken, action_input: x]"])
    result = create_araft_agent(model, [Broken], max_steps=1).invoke({"question": "q?"})
    assert result["status"] == "tool_error"
    assert result["steps"][0]["observation"] == "The tool Broken failed (ConnectionError: socket closed)."


def test_repetition_guard(scripted, wiki):
    script = [search("Philadelphia"), search("philadelphia "), answer("1682")]
    off = create_araft_agent(scripted(script=script), [wiki]).invoke({"question": "q?"})
    assert off["steps"][1]["error"] is None
    assert off["steps"][1]["observation"] == off["steps"][0]["observation"]
    on = create_araft_agent(scripted(script=script), [wiki], repetition_guard=True).invoke({"question": "q?"})
    assert on["steps"][1]["error"] == "repeated_action"
    assert on["steps"][1]["observation"].startswith("You already did [action: Wikipedia, action_input: philadelphia]")
    assert on["status"] == "answered"


def test_messages_input_for_chat_apps(scripted, wiki):
    model = scripted(script=[answer("Harrisburg")])
    agent = create_araft_agent(model, [wiki])
    result = agent.invoke({"messages": [HumanMessage("What is the capital of Pennsylvania?")]})
    assert result["question"] == "What is the capital of Pennsylvania?"
    assert [m.type for m in result["messages"]] == ["human", "ai"]


def test_empty_question_raises(scripted, wiki):
    agent = create_araft_agent(scripted(script=[answer("x")]), [wiki])
    with pytest.raises(ValueError, match="question is empty"):
        agent.invoke({"question": "   "})


def test_swapped_tools_reach_prompt_and_parser(scripted):
    @tool
    def Calculator(expression: str) -> str:
        """evaluates arithmetic"""
        return str(eval(expression, {"__builtins__": {}}))

    model = scripted(script=["Thought: add\nAction: [action: calculator, action_input: 2+3]", answer("5")])
    result = create_araft_agent(model, [Calculator], prompt="zeroshot").invoke({"question": "2+3?"})
    assert result["steps"][0]["observation"] == "5"
    assert "[action: Calculator, action_input: <input>]: evaluates arithmetic" in model.prompts[0][0].content


def test_stream_batch_ainvoke_and_callbacks(scripted, wiki):
    agent = create_araft_agent(scripted(script=[search("Pennsylvania"), answer("Harrisburg")]), [wiki])
    nodes = [next(iter(u)) for u in agent.stream({"question": "q?"}, stream_mode="updates")]
    assert nodes == ["start", "reason", "act", "reason"]

    agent = create_araft_agent(scripted(script=[answer("a")]), [wiki])
    results = agent.batch([{"question": "one?"}, {"question": "two?"}], {"max_concurrency": 2})
    assert [r["status"] for r in results] == ["answered", "answered"]

    agent = create_araft_agent(scripted(script=[answer("b")]), [wiki])
    assert asyncio.run(agent.ainvoke({"question": "q?"}))["answer"] == "b"

    class Count(BaseCallbackHandler):
        def __init__(self):
            self.models = self.tools = 0

        def on_chat_model_start(self, *a, **k):
            self.models += 1

        def on_tool_start(self, *a, **k):
            self.tools += 1

    counter = Count()
    agent = create_araft_agent(scripted(script=[search("Pennsylvania"), answer("Harrisburg")]), [wiki])
    agent.invoke({"question": "q?"}, {"callbacks": [counter]})
    assert (counter.models, counter.tools) == (2, 1)


def test_stream_messages_mode_yields_model_tokens(scripted, wiki):
    agent = create_araft_agent(scripted(script=[answer("Harrisburg")]), [wiki])
    chunks = [
        m
        for m, meta in agent.stream({"question": "q?"}, stream_mode="messages")
        if meta.get("langgraph_node") == "reason"
    ]
    # First the model's own text, then the answer the node adds to the conversation.
    text = "".join(c.content for c in chunks)
    assert text == "Thought: I know it\nAction: [action: Answer, action_input: Harrisburg]" + "Harrisburg"


def test_graph_shape(scripted, wiki):
    graph = create_araft_agent(scripted(script=[answer("x")]), [wiki]).get_graph()
    edges = {(e.source, e.target) for e in graph.edges}
    assert edges == {
        ("__start__", "start"),
        ("start", "reason"),
        ("reason", "act"),
        ("reason", "reason"),
        ("reason", "__end__"),
        ("act", "reason"),
        ("act", "__end__"),
    }


def test_bad_settings(scripted, wiki):
    with pytest.raises(ValueError, match="max_steps"):
        create_araft_agent(scripted(script=["x"]), [wiki], max_steps=0)
