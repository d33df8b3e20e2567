import pytest
from langchain_core.tools import tool

from araft_lc.react.llama2_format import llama2_prompt
from araft_lc.react.parser import Action, Answer, parse
from araft_lc.react.prompt import PROMPT_STYLES, load_prompt, render_messages, render_step
from araft_lc.react.trajectory import Step


@tool
def Calculator(expression: str) -> str:
    """evaluates an arithmetic expression"""
    return "4"


def test_styles_ship():
    assert {"fewshot", "zeroshot"} <= set(PROMPT_STYLES)


def test_fewshot_examples_are_in_the_grammar():
    style = load_prompt("fewshot")
    assert len(style.examples) == 3
    for example in style.examples:
        lines = [line for line in example.splitlines() if line.startswith("Action:")]
        parsed = [parse(line, ["Wikipedia"]) for line in lines]
        assert all(isinstance(p, (Action, Answer)) for p in parsed)
        assert isinstance(parsed[-1], Answer)


def test_system_prompt_lists_the_given_tools():
    style = load_prompt("zeroshot")
    system = style.render_system([Calculator])
    assert "[action: Calculator, action_input: <input>]: evaluates an arithmetic expression" in system
    assert "[action: Answer, action_input: <answer>]" in system
    assert "Wikipedia" not in system


def test_user_turn_is_question_then_scratchpad():
    steps = [
        Step("find it", "Wikipedia", "Paris", "Paris is the capital of France.", "raw"),
        Step("", None, None, "No action found.", "garbled output\n", error="parse_error"),
    ]
    messages = render_messages(load_prompt("zeroshot"), [Calculator], "What is Paris?", steps)
    assert messages[1].content == (
        "Question: What is Paris?\n"
        "Thought: find it\nAction: [action: Wikipedia, action_input: Paris]\n"
        "Observation: Paris is the capital of France.\n"
        "garbled output\nObservation: No action found."
    )
    assert render_step(Step("t", "Answer", "x", None, "r")) == "Thought: t\nAction: [action: Answer, action_input: x]"


def test_turns_layout_is_one_growing_conversation():
    style = load_prompt("zeroshot_turns")
    assert style.layout == "turns" and style.system == load_prompt("zeroshot").system  # base: zeroshot
    steps = [Step("t1", "Wikipedia", "A", "about A", raw=""), Step("", None, None, "bad format", raw=" oops ")]
    messages = render_messages(style, [Calculator], "Q?", steps)
    assert [(m.type, m.text) for m in messages[1:]] == [
        ("human", "Question: Q?"),
        ("ai", "Thought: t1\nAction: [action: Wikipedia, action_input: A]"),
        ("human", "Observation: about A"),
        ("ai", "oops"),
        ("human", "Observation: bad format"),
    ]
    shorter = render_messages(style, [Calculator], "Q?", steps[:1])
    assert messages[: len(shorter)] == shorter


def test_bad_prompt_files_say_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: v\nsystem: s\nlayout: sideways\n")
    with pytest.raises(ValueError, match="layout 'sideways' is not one of scratchpad, turns"):
        load_prompt(str(bad))
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="not a YAML mapping"):
        load_prompt(str(bad))


def test_unknown_style_names_the_choices():
    with pytest.raises(ValueError, match="fewshot"):
        load_prompt("nope")


def test_llama2_format_exact():
    text = llama2_prompt(
        [
            {"role": "system", "content": "SYS"},
            {"role": "user", "content": "Question: q"},
        ]
    )
    assert text == "<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\nQuestion: q [/INST]"
    multi = llama2_prompt(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ]
    )
    assert multi == "<s>[INST] a [/INST] b </s><s>[INST] c [/INST]"
    with pytest.raises(ValueError, match="alternating"):
        llama2_prompt([{"role": "assistant", "content": "x"}])
