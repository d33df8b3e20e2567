"""LangChain's own conformance suites (``langchain-tests``): what the ecosystem calls a chat
model and a tool, run on the Wikipedia tool over a local index and on ``AraftChatModel`` twice:

- over a tiny random Llama: the real generation path. The tests that need a model able to pick a
  tool or write JSON are expected to fail there (``COMPETENCE``, strict xfail: a random model
  that passed one would be news);
- over ``RuleFollower``, a stand-in for a competent ReAct model at the model's edge (it reads the
  rendered Araft prompt and writes an action or a JSON object as such a model would): every
  tool-calling and structured-output test then runs against our rendering, parsing and message
  contract.

The chat model's standard parameters are those of a local model: no network ``timeout``,
``max_retries`` or ``api_key`` (the suite's defaults are an API client's).
"""

import json
import re
from typing import Any

import pytest
from helpers import ScriptedLM, train_tokenizer

from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool

suites = pytest.importorskip("langchain_tests", reason="pip install -e '.[dev]' brings langchain-tests")
from langchain_tests.integration_tests import ChatModelIntegrationTests, ToolsIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests  # noqa: E402

LOCAL_PARAMS = {"temperature": 0, "max_tokens": 100, "stop": []}


class _TinyLlama:
    model_path = ""

    @pytest.fixture(autouse=True)
    def _model_path(self, tiny_llama):
        type(self).model_path = str(tiny_llama)

    @property
    def chat_model_class(self) -> type[AraftChatModel]:
        return AraftChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_id": self.model_path}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return dict(LOCAL_PARAMS)


class TestAraftChatModelUnit(_TinyLlama, ChatModelUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return {}, {}, {}


class _Wikipedia:
    @pytest.fixture(autouse=True)
    def _index(self, mini_index):
        type(self).index = mini_index

    @property
    def tool_constructor(self) -> type[WikipediaTool]:
        return WikipediaTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"backend": LocalWikipedia(self.index)}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "Philadelphia"}


class TestWikipediaToolUnit(_Wikipedia, ToolsUnitTests):
    pass


class TestWikipediaToolIntegration(_Wikipedia, ToolsIntegrationTests):
    pass


class TestAraftChatModelIntegration(_TinyLlama, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _competence(self, request):
        if request.node.originalname in COMPETENCE:
            request.node.add_marker(
                pytest.mark.xfail(
                    reason="a random 2-layer model cannot choose a tool or write JSON",
                    strict=True,
                    raises=COMPETENCE[request.node.originalname],
                )
            )


# The integration tests that need a model that follows instructions, and how a random model fails
# each: no tool call (an assertion of the suite), or no JSON object (the parser's ValueError:
# OutputParserException, JSONDecodeError, pydantic's ValidationError; or the suite's TypeError
# iterating the None that a failed parse leaves). Any other error is a failure, not "expected".
_NO_TOOL_CALL = (AssertionError,)
_NO_JSON = (ValueError, TypeError)
COMPETENCE = {
    "test_tool_calling": _NO_TOOL_CALL,
    "test_tool_calling_async": _NO_TOOL_CALL,
    "test_bind_runnables_as_tools": _NO_TOOL_CALL,
    "test_tool_choice": _NO_TOOL_CALL,
    "test_tool_calling_with_no_arguments": _NO_TOOL_CALL,
    "test_agent_loop": _NO_TOOL_CALL,
    "test_unicode_tool_call_integration": _NO_TOOL_CALL,
    "test_structured_output": _NO_JSON,
    "test_structured_output_async": _NO_JSON,
    "test_structured_output_pydantic_2_v1": _NO_JSON,
    "test_structured_output_optional_param": _NO_JSON,
}


def _fill(schema: dict[str, Any], text: str) -> Any:
    """A value of JSON-schema type ``schema``, taken from ``text`` where it can be."""
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type")
    numbers = re.findall(r"-?\d+", text)
    if kind == "integer":
        return int(numbers[0]) if numbers else 1
    if kind == "number":
        return float(numbers[0]) if numbers else 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {k: _fill(v, text) for k, v in schema.get("properties", {}).items()}
    quoted = re.findall(r"'([^']+)'", text)
    return quoted[0] if quoted else text


def _sections(prompt: str) -> tuple[str, str]:
    """A Llama-2 chat prompt's system text, and the conversation after it as plain lines."""
    text = prompt.replace("<s>", "").replace("</s>", "").replace(" [/INST]", "\n").replace("[INST] ", "\n")
    if "<<SYS>>\n" in text:
        system, _, run = text.split("<<SYS>>\n", 1)[1].partition("\n<</SYS>>")
        return system, run.strip()
    return "", text.strip()


def follow_the_rules(prompt: str) -> str:
    """What a competent ReAct model writes after ``prompt`` (the text the LM reads): JSON when
    asked for it; after an observation, the answer; else an action of the tool the question
    names (or the first), its input filled from the question by the prompt's argument hint."""
    system, run = _sections(prompt)
    if "must match this JSON schema:\n" in run:
        schema = json.loads(run.rsplit("must match this JSON schema:\n", 1)[1].split("\n", 1)[0])
        asked = (system + "\n" + run.split("Reply with one JSON object", 1)[0]).strip()
        return json.dumps(_fill(schema, asked), ensure_ascii=False)
    tools = re.findall(r"^\[action: ([^,]+), action_input: (.*)\]: ", system, re.MULTILINE)
    tools = [(name, hint) for name, hint in tools if name != "Answer"]
    if not tools:
        return "Hello! I read your message."
    observations = re.findall(r"^Observation: (.*)$", run, re.MULTILINE)
    if observations:
        return f"Thought: I have what I need.\nAction: [action: Answer, action_input: {observations[-1]}]"
    question = run.split("Question: ", 1)[-1].split("\n", 1)[0]
    name, hint = next(((n, h) for n, h in tools if n.casefold() in question.casefold()), tools[0])
    if hint == "<input>":
        value = _fill({"type": "integer"}, question) if re.search(r"\d", question) else _fill({}, question)
    else:
        fields = re.findall(r'"([^"]+)": <([^>]+)>', hint)
        value = json.dumps({f: _fill({"type": t.split(" or ")[0]}, question) for f, t in fields}, ensure_ascii=False)
    return f"Thought: I will use {name}.\nAction: [action: {name}, action_input: {value}]"


class RuleFollower(AraftChatModel):
    """AraftChatModel over a scripted LM at the model's edge (``helpers.ScriptedLM``) that writes
    the tokens ``follow_the_rules`` picks: the rendering, decoding, stop strings, streaming and
    usage are all our own code."""

    def __init__(self, **fields: Any) -> None:
        super().__init__(
            model=ScriptedLM(follow_the_rules),
            tokenizer=train_tokenizer(),
            max_batch_size=1,
            prefix_cache=False,
            **fields,
        )


class TestRuleFollowerIntegration(ChatModelIntegrationTests):
    """The tool-calling and structured-output contract, on a model that follows the prompt."""

    @property
    def chat_model_class(self) -> type[AraftChatModel]:
        return RuleFollower

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_id": "rule-follower"}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The suite's 100 tokens are too few here: the tiny tokenizer (600 byte-level tokens)
        # spends about three on each CJK character, and the suite's unicode tool call takes 125.
        return {**LOCAL_PARAMS, "max_tokens": 256}
