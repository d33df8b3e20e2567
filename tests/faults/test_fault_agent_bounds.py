"""Bounds that belong to the agent, whatever its tools and input (``araft_lc.agent.graph`` with
``araft_lc.agent.tool_runner`` and the chat model's context check): a tool that hangs is cut off at its
timeout or at the run's deadline; an observation of any size and type is capped; a question too
long for the agent is refused before any model call; a prompt too long for the model's context is
never prefilled."""

import time

import pytest
from helpers import HANG_S, act, answer, with_context
from langchain_core.tools import tool

from araft_lc.agent.graph import create_araft_agent


def test_a_hung_tool_is_cut_off_at_its_timeout_and_the_run_goes_on(scripted, hanging, ledger):
    sync_tool, _, _ = hanging
    model = scripted(script=[act("Slow", "x"), answer("y")])
    start = time.monotonic()
    result = create_araft_agent(model, [sync_tool], tool_timeout=0.5).invoke({"question": "q?"})
    seconds = time.monotonic() - start
    assert seconds < HANG_S / 2
    step = result["steps"][0]
    assert step["error"] == "tool_timeout"
    assert step["observation"] == "The tool Slow did not answer within 0.5 s (timed out)."
    assert result["status"] == "answered" and result["answer"] == "y"  # the run went on
    assert "Observation: The tool Slow did not answer" in model.prompts[1][1].content
    ledger.add("tools: hung", faults=1, runs=1, completed=1, seconds=seconds)


def test_the_runs_deadline_cuts_a_hung_tool_off_and_ends_the_run(scripted, hanging, ledger):
    sync_tool, _, _ = hanging
    model = scripted(script=[act("Slow", "x"), answer("y")])
    start = time.monotonic()
    result = create_araft_agent(model, [sync_tool], max_seconds=1.0, tool_timeout=None).invoke({"question": "q?"})
    assert time.monotonic() - start < HANG_S / 2
    assert result["steps"][0]["error"] == "tool_timeout" and result["status"] == "time_limit"
    assert len(model.prompts) == 1  # no model call after the deadline
    ledger.add("tools: hung", faults=1, runs=1, completed=1, seconds=time.monotonic() - start)


async def test_an_async_tool_is_cancelled_at_its_timeout(scripted, hanging, ledger):
    _, async_tool, _ = hanging
    model = scripted(script=[act("Slow", "x"), answer("y")])
    start = time.monotonic()
    result = await create_araft_agent(model, [async_tool], tool_timeout=0.5).ainvoke({"question": "q?"})
    assert time.monotonic() - start < HANG_S / 2
    assert result["steps"][0]["error"] == "tool_timeout" and result["answer"] == "y"
    ledger.add("tools: hung", faults=1, runs=1, completed=1, seconds=time.monotonic() - start)


def test_an_async_only_tool_under_invoke_is_cut_off_too(scripted, hanging):
    _, async_tool, _ = hanging
    result = create_araft_agent(
        scripted(script=[act("Slow", "x"), answer("y")]), [async_tool], tool_timeout=0.5
    ).invoke({"question": "q?"})
    assert result["steps"][0]["error"] == "tool_timeout"


def test_a_flood_of_text_is_capped_and_its_length_kept(scripted, ledger):
    @tool
    def Flood(query: str) -> str:
        """Returns five million characters."""
        return "word " * 1_000_000

    model = scripted(script=[act("Flood", "x"), answer("y")])
    result = create_araft_agent(model, [Flood]).invoke({"question": "q?"})
    step = result["steps"][0]
    assert len(step["observation"]) <= 600 and step["observation"].endswith("word ... [cut: 4,999,999 characters]")
    assert step["observed_chars"] == 4_999_999
    assert len(model.prompts[1][1].content) < 5_000  # the next prompt holds the cut observation only
    ledger.add("tools: flood", faults=1, runs=1, completed=1)


@pytest.mark.parametrize(
    "output, text",
    [
        (b"caf\xc3\xa9", "café"),
        ({"population": 1_500_000, "state": "PA"}, '{"population": 1500000, "state": "PA"}'),
        (["Penn", "Lenape"], '["Penn", "Lenape"]'),
    ],
)
def test_bytes_dicts_and_lists_are_rendered_as_text(scripted, output, text):
    @tool
    def Facts(query: str) -> object:
        """Returns facts."""
        return output

    result = create_araft_agent(scripted(script=[act("Facts", "x"), answer("y")]), [Facts]).invoke({"question": "q?"})
    assert result["steps"][0]["observation"] == text and "observed_chars" not in result["steps"][0]


def test_an_oversized_question_is_refused_before_any_model_call(scripted, wiki, ledger):
    model = scripted(script=[answer("y")])
    agent = create_araft_agent(model, [wiki], max_question_chars=100)
    with pytest.raises(ValueError, match=r"the question is 299,999 characters, more than this agent takes \(100"):
        agent.invoke({"question": "why? " * 60_000})
    assert model.prompts == []
    assert agent.invoke({"question": "Who founded Philadelphia?"})["answer"] == "y"
    ledger.add("context", faults=1, runs=2, completed=1)


def test_bounds_must_be_positive(scripted, wiki):
    for key in ("tool_timeout", "observation_chars", "max_question_chars"):
        with pytest.raises(ValueError, match=f"{key} must be positive"):
            create_araft_agent(scripted(script=[]), [wiki], **{key: 0})


@pytest.fixture
def small_context(tiny_llama, tmp_path):
    """The tiny Llama with a context of 512 positions (its config says so; nothing else differs)."""
    return with_context(tiny_llama, tmp_path / "tiny-512", 512)


def test_a_question_that_cannot_fit_the_context_is_refused_before_any_prefill(small_context, wiki, ledger):
    from araft_lc.chat.chat_model import AraftChatModel, ContextLimitError

    model = AraftChatModel(model_id=str(small_context), max_new_tokens=8, prefix_cache=True)
    assert model.context_length == 512
    agent = create_araft_agent(model, [wiki], prompt="zeroshot", max_question_chars=None)
    result = agent.invoke({"question": "Who founded Philadelphia? " * 200})
    assert result["status"] == "context_limit" and result["steps"] == [] and result["answer"] is None
    assert "the question does not fit the model: the prompt is" in result["messages"][-1].content
    assert "past the model's context of 512 positions" in result["messages"][-1].content
    assert (
        model.engine.prefix_cache.prompt_tokens == 0
    )  # nothing was prefilled (every prefill asks the prefix cache first)
    with pytest.raises(ContextLimitError):  # the chat model itself, streamed or not
        list(model.stream("word " * 2000))
    ledger.add("context", faults=2, runs=2, completed=1)


def test_a_scratchpad_that_outgrows_the_context_ends_the_run(small_context, wiki, ledger):
    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.react.prompt import load_prompt, render_messages

    question = "Who founded Philadelphia?"
    probe = AraftChatModel(model_id=str(small_context), max_new_tokens=8)
    first = render_messages(load_prompt("zeroshot"), [wiki], question, [])
    first_tokens = len(probe.tokenizer(probe.prompt_text(first), add_special_tokens=False)["input_ids"])
    model = AraftChatModel(model_id=str(small_context), max_new_tokens=512 - first_tokens)  # the first fits exactly
    result = create_araft_agent(model, [wiki], prompt="zeroshot", max_steps=3).invoke({"question": question})
    assert result["status"] == "context_limit" and len(result["steps"]) == 1
    assert "after 1 steps the run outgrew the model" in result["messages"][-1].content
    ledger.add("context", faults=1, runs=1, completed=1)
