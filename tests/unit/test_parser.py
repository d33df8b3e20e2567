import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from araft_lc.react.parser import Action, Answer, ParseError, format_action, parse

TOOLS = ("Wikipedia", "Calculator")


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Thought: look it up\nAction: [action: Wikipedia, action_input: Arthur's Magazine]",
            Action("Wikipedia", "Arthur's Magazine", "look it up"),
        ),
        # missing closing bracket
        ("Thought: t\nAction: [action: Wikipedia, action_input: Paris", Action("Wikipedia", "Paris", "t")),
        # trailing text after the action, on the same line and on later lines
        (
            "Thought: t\nAction: [action: Wikipedia, action_input: Paris] and then more\nObservation: x",
            Action("Wikipedia", "Paris", "t"),
        ),
        # extra whitespace and case in the tool name and labels
        (
            "thought:   spaced   out \n ACTION :  [ action : wikipedia ,  action_input :  Lyon  ]",
            Action("Wikipedia", "Lyon", "spaced out"),
        ),
        (
            "Thought: other tool\nAction: [action: calculator, action_input: 2+2]",
            Action("Calculator", "2+2", "other tool"),
        ),
        # brackets inside the input: the last ] of the line closes the action
        (
            "Thought: t\nAction: [action: Wikipedia, action_input: List of [x] things]",
            Action("Wikipedia", "List of [x] things", "t"),
        ),
        # unknown tools still parse; the act node answers them
        ("Thought: t\nAction: [action: Google, action_input: Paris]", Action("Google", "Paris", "t")),
        ("Thought: done\nAction: [action: Answer, action_input: 1844]", Answer("1844", "done")),
        ('Thought: done\nAction: [action: answer, action_input: "yes"]', Answer("yes", "done")),
        # no thought at all is tolerated
        ("Action: [action: Answer, action_input: Lucca]", Answer("Lucca", "")),
        ("Thought: t\nAction: [action: Wikipedia, action_input: ]", None),
        ("Thought: t\nAction: [action: , action_input: x]", None),
        ("The answer is: First for Women.", None),
        ("", None),
        (
            "Thought: multi\nline thought\nAction: [action: Wikipedia, action_input: A]",
            Action("Wikipedia", "A", "multi line thought"),
        ),
    ],
)
def test_parse_shapes(text, expected):
    result = parse(text, TOOLS)
    if expected is None:
        assert isinstance(result, ParseError)
        assert result.reason
    else:
        assert result == expected


def test_parse_error_keeps_the_thought():
    result = parse("Thought: I know it\nThe answer is Paris", TOOLS)
    assert isinstance(result, ParseError)
    assert result.thought == "I know it The answer is Paris"


def test_non_string_input_is_a_parse_error():
    assert isinstance(parse(None), ParseError)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_is_total(text):
    assert isinstance(parse(text, TOOLS), (Action, Answer, ParseError))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["Wikipedia", "Answer", "Calculator"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1)
    .map(lambda s: " ".join(s.replace("]", " ").split()).strip('"'))
    .filter(lambda s: s.strip()),
)
def test_format_then_parse_round_trips(tool, tool_input):
    result = parse(f"Thought: x\nAction: {format_action(tool, tool_input)}", TOOLS)
    if tool == "Answer":
        assert result == Answer(tool_input, "x")
    else:
        assert result == Action(tool, tool_input, "x")
