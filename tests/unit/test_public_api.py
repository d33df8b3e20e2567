"""araft_lc's public names: each importable from the package, which stays light to import."""

import subprocess
import sys

from helpers import ROOT

import araft_lc


def test_every_public_name_imports_from_the_package():
    expected = {
        "create_araft_agent",
        "AgentInput",
        "AgentOutput",
        "AraftChatModel",
        "load_chat_model",
        "ModelSpec",
        "load_causal_lm",
        "WikipediaTool",
        "LocalWikipedia",
        "LiveWikipedia",
        "wikipedia_tool",
        "TrajectoryRecorder",
        "JsonlTraceHandler",
        "load_prompt",
        "PromptStyle",
        "Step",
        "TrajectoryRecord",
        "parse",
        "__version__",
    }
    assert expected <= set(araft_lc.__all__)
    for name in araft_lc.__all__:
        namespace: dict = {}
        exec(f"from araft_lc import {name}", namespace)
        assert namespace[name] is not None, name
    assert araft_lc.load_chat_model.__module__ == "araft_lc.chat.model_spec"
    assert araft_lc.ModelSpec.__module__ == "araft_lc.chat.model_spec"
    assert araft_lc.load_causal_lm.__module__ == "araft_lc.runtime.torch.causal_lm"
    assert araft_lc.TrajectoryRecorder.__module__ == "araft_lc.agent.recorder"


def test_importing_the_package_loads_no_ml_stack():
    code = (
        "import sys, araft_lc; heavy = sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules); "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
