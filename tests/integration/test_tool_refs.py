"""Tools named by the settings (araft_lc.agent.tool_refs, factory.settings_tools): module:attribute
references and MCP servers over stdio, through the Python API, the command line and the server's
environment, each a run's record keeps; bad references are one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import MINI_CORPUS, TEST_DATA, act, answer

from araft import main
from araft_lc.agent.factory import build_agent, settings_tools
from araft_lc.agent.settings import RunSettings, settings_from_env
from araft_lc.agent.tool_refs import ToolRefError, load_mcp_tools, load_tool_ref

TOOLS_MODULE = '''
from langchain_core.tools import tool

@tool
def Calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as 12 * 7."""
    left, op, right = expression.split()
    return str({"*": int(left) * int(right), "+": int(left) + int(right)}[op])

@tool
def Answer(text: str) -> str:
    """Clashes with the answer action."""
    return text

def both():
    return [Calculator]

NOT_A_TOOL = 3
'''


@pytest.fixture
def tools_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_tools.py").write_text(TOOLS_MODULE)
    monkeypatch.delitem(sys.modules, "my_tools", raising=False)  # this test's module, not one imported before
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "my_tools"


@pytest.fixture
def mcp_config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {"mcpServers": {"math": {"command": sys.executable, "args": [str(TEST_DATA / "mcp_math_server.py")]}}}
        )
    )
    return path


def test_a_reference_names_a_tool_a_list_or_a_function_returning_them(tools_module: str) -> None:
    assert [t.name for t in load_tool_ref("my_tools:Calculator")] == ["Calculator"]
    assert [t.name for t in load_tool_ref("my_tools:both")] == ["Calculator"]
    assert load_tool_ref("my_tools:Calculator")[0].invoke("12 * 7") == "84"


@pytest.mark.parametrize(
    "ref, message",
    [
        ("my_tools", "write MODULE:ATTRIBUTE"),
        ("no_such_module:x", "module 'no_such_module' does not import"),
        ("my_tools:Nope", "has no attribute 'Nope'"),
        ("my_tools:NOT_A_TOOL", "is a int, not a LangChain tool"),
    ],
)
def test_a_bad_reference_is_one_line(tools_module: str, ref: str, message: str) -> None:
    with pytest.raises(ToolRefError, match=message) as caught:
        load_tool_ref(ref)
    assert "\n" not in str(caught.value)


def test_a_tool_named_answer_or_twice_is_refused(tools_module: str, scripted) -> None:
    from araft_lc.agent.graph import create_araft_agent

    calc, clash = load_tool_ref("my_tools:Calculator")[0], load_tool_ref("my_tools:Answer")[0]
    with pytest.raises(ValueError, match="the answer action's name"):
        settings_tools(RunSettings(wikipedia=False, tools=["my_tools:Calculator", "my_tools:Answer"]))
    with pytest.raises(ValueError, match="two tools are named 'Calculator'"):
        settings_tools(RunSettings(wikipedia=False, tools=["my_tools:Calculator", "my_tools:both"]))
    for tools in ([calc, clash], [calc, calc]):  # the agent itself refuses them too, whatever built them
        with pytest.raises(ValueError, match="the answer action's name|two tools are named 'Calculator'"):
            create_araft_agent(scripted(script=["x"]), tools)


def test_mcp_servers_over_stdio_give_their_tools(mcp_config: Path, scripted) -> None:
    from araft_lc.agent.graph import create_araft_agent

    [add] = load_mcp_tools(mcp_config)
    assert add.name == "add"
    agent = create_araft_agent(scripted(script=[act("add", '{"a": 6, "b": 7}'), answer("13")]), [add])
    result = agent.invoke({"question": "What is 6 plus 7?"})
    assert result["steps"][0]["observation"] == "13" and result["answer"] == "13"


def test_a_bad_mcp_config_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ToolRefError, match="does not exist"):
        load_mcp_tools(tmp_path / "none.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="mapping"):
        load_mcp_tools(tmp_path / "list.json")
    (tmp_path / "dead.json").write_text(json.dumps({"dead": {"command": sys.executable, "args": ["-c", "pass"]}}))
    with pytest.raises(ToolRefError, match="did not list their tools") as caught:
        load_mcp_tools(tmp_path / "dead.json")
    assert "\n" not in str(caught.value)


def test_settings_name_tools_beside_or_instead_of_wikipedia(tools_module: str, mcp_config: Path) -> None:
    both = settings_tools(
        RunSettings(corpus=str(MINI_CORPUS), tools=["my_tools:Calculator"], mcp_config=str(mcp_config))
    )
    assert [t.name for t in both] == ["Wikipedia", "Calculator", "add"]
    alone = settings_tools(RunSettings(wikipedia=False, tools=["my_tools:Calculator"]))
    assert [t.name for t in alone] == ["Calculator"]
    with pytest.raises(ValueError, match="leaves the agent no tools"):
        RunSettings(wikipedia=False).check()


def test_the_server_and_the_python_api_get_the_same_tools(tools_module: str, mcp_config: Path, scripted) -> None:
    env = {"ARAFT_CORPUS": str(MINI_CORPUS), "ARAFT_TOOLS": "my_tools:Calculator", "ARAFT_MCP_CONFIG": str(mcp_config)}
    served = settings_from_env(RunSettings, env)
    assert served.tools == ["my_tools:Calculator"]
    model = scripted(script=[act("Calculator", "12 * 7"), answer("84")])
    via_server = build_agent(served, model=model)
    via_api = build_agent(
        RunSettings(corpus=str(MINI_CORPUS), tools=["my_tools:Calculator"], mcp_config=str(mcp_config)), model=model
    )
    names = [[card["name"] for card in agent.config["metadata"]["araft_tools"]] for agent in (via_server, via_api)]
    assert names[0] == names[1] == ["Wikipedia", "Calculator", "add"]


def test_ask_eval_and_generate_run_custom_tools_and_their_records_keep_them(
    tools_module: str, mcp_config: Path, tiny_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "--model",
        str(tiny_llama),
        "--max-steps",
        "1",
        "--max-new-tokens",
        "4",
        "--tool",
        "my_tools:Calculator",
        "--mcp-config",
        str(mcp_config),
    ]
    assert main(["ask", "--json", "--corpus", str(MINI_CORPUS), *common, "What is 12 times 7?"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [t["name"] for t in record["tools"]] == ["Wikipedia", "Calculator", "add"]
    system = record["calls"][0]["messages"][0]["content"]
    assert all(f"action: {name}" in system for name in ("Wikipedia", "Calculator", "add"))
    questions = tmp_path / "arith.jsonl"
    questions.write_text(json.dumps({"id": "a1", "question": "What is 12 times 7?", "answer": "84"}) + "\n")
    out = tmp_path / "eval"
    assert main(["eval", "--questions", str(questions), "--out", str(out), "--no-wikipedia", *common]) == 0
    [line] = (out / "trajectories.jsonl").read_text().splitlines()
    assert [t["name"] for t in json.loads(line)["tools"]] == ["Calculator", "add"]
    assert json.loads((out / "report.json").read_text())["levels"]["all"]["f1"]["n"] == 1
    runs = tmp_path / "runs.jsonl"
    assert main(["generate", "--questions", str(questions), "--out", str(runs), "--no-wikipedia", *common]) == 0
    [line] = (tmp_path / "runs.rejects.jsonl").read_text().splitlines()  # a random model answers wrong
    assert [t["name"] for t in json.loads(line)["tools"]] == ["Calculator", "add"]
    capsys.readouterr()
    assert main(["ask", "--tool", "my_tools:Nope", *common[:2], "q?"]) == 2  # before live Wikipedia is asked
    assert capsys.readouterr().err.count("\n") == 1
