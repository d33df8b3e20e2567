"""One agent behind every door: the model carries the prompt it was trained with, one factory
builds the agent from run settings (``araft ask``, ``generate``, ``eval``, the server), and the
server reads the same settings from its environment."""

import ast
import json
import shutil
import warnings

import pytest
from helpers import MINI_CORPUS, ROOT, ScriptedChatModel, answer

from araft_lc.agent.factory import build_agent
from araft_lc.agent.graph import create_araft_agent
from araft_lc.agent.settings import RunSettings, add_settings_flags, settings_from_args, settings_from_env
from araft_lc.storage.config_file import ConfigError


@pytest.fixture
def turns_adapter(adapters, tmp_path):
    """A LoRA adapter whose folder records that it was trained on zeroshot_turns records."""
    folder = tmp_path / "turns-adapter"
    shutil.copytree(adapters["a"], folder)
    (folder / "data.json").write_text(json.dumps({"records": 1, "prompt_style": "zeroshot_turns"}))
    return folder


def test_a_model_carries_the_prompt_its_adapter_was_trained_with(tiny_llama, turns_adapter, wiki):
    from araft_lc.chat.chat_model import AraftChatModel

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model = AraftChatModel(model_id=str(tiny_llama), adapters={"t": str(turns_adapter)}, adapter="t")
        agent = create_araft_agent(model, [wiki])
    assert not [w for w in seen if "trained with" in str(w.message)]  # its own prompt: no warning
    assert model.prompt == model.trained_prompt == "zeroshot_turns"
    assert agent.prompt_version == "araft-zeroshot-turns-v1"
    # An explicit prompt still wins, with a warning naming both styles.
    with pytest.warns(UserWarning, match="trained with the 'zeroshot_turns' prompt .* runs with 'fewshot'"):
        agent = create_araft_agent(model, [wiki], prompt="fewshot")
    assert agent.prompt_version == "araft-fewshot-v1"
    with pytest.warns(UserWarning, match="adapter 't' was trained with the 'zeroshot_turns' prompt"):
        AraftChatModel(model_id=str(tiny_llama), adapters={"t": str(turns_adapter)}, adapter="t", prompt="zeroshot")
    # The base model, or an adapter that records nothing: the default style; a typo fails at once.
    assert AraftChatModel(model_id=str(tiny_llama)).prompt == "fewshot"
    with pytest.raises(ValueError, match="unknown prompt style 'fewshoot'"):
        AraftChatModel(model_id=str(tiny_llama), prompt="fewshoot")


def test_the_agent_renders_the_models_own_prompt(wiki):
    class CarriesTurns(ScriptedChatModel):  # a model wrapper that names its prompt, as AraftChatModel does
        prompt: str = "zeroshot_turns"

    model = CarriesTurns(script=[answer("Penn")])
    assert create_araft_agent(model, [wiki]).invoke({"question": "Who founded Philadelphia?"})["answer"] == "Penn"
    assert [m.type for m in model.prompts[0]] == ["system", "human"]
    assert model.prompts[0][1].content == "Question: Who founded Philadelphia?"  # the turns layout
    plain = ScriptedChatModel(script=[answer("Penn")])  # a model with no prompt of its own
    assert create_araft_agent(plain, [wiki]).prompt_version == "araft-fewshot-v1"


def test_each_preset_names_the_prompt_its_adapter_learned():
    from araft_lc.chat.presets import PRESETS

    # (loading a preset is the parity test's: SmolLM2 converts once, 20 s; here, what it carries)
    assert {name: p.prompt for name, p in PRESETS.items()} == {
        "araft-smollm2": "zeroshot_turns",
        "araft-dpo": "fewshot",
        "araft-sft": "fewshot",
        "smollm2-135m": "fewshot",
    }


def test_ask_and_build_agent_share_their_defaults():
    import argparse

    parser = argparse.ArgumentParser()
    add_settings_flags(parser, RunSettings)
    assert settings_from_args(RunSettings, parser.parse_args([])) == RunSettings() == settings_from_env(RunSettings, {})
    defaults = RunSettings()
    assert (defaults.model, defaults.prompt, defaults.max_steps, defaults.max_seconds) == (
        "araft-smollm2",
        None,
        5,
        600.0,
    )


def test_build_agent_runs_the_settings(tiny_llama):
    settings = RunSettings(
        model=str(tiny_llama), corpus=str(MINI_CORPUS), max_steps=2, max_new_tokens=8, prompt="zeroshot"
    )
    agent = build_agent(settings)
    assert agent.prompt_version == "araft-zeroshot-v1"
    result = agent.invoke({"question": "Who founded Philadelphia?"})
    assert len(result["steps"]) == 2 and result["status"] in ("parse_error", "step_limit", "tool_error", "answered")


def test_build_agent_checks_before_anything_loads(tiny_llama, tmp_path):
    missing = str(tmp_path / "no-corpus.jsonl")
    with pytest.raises(ValueError, match="unknown prompt style 'fewshoot'"):
        build_agent(RunSettings(model=str(tiny_llama), corpus=missing, prompt="fewshoot"))
    with pytest.raises(ValueError, match="does not exist"):
        build_agent(RunSettings(model=str(tmp_path / "no-model"), corpus=missing))
    with pytest.raises(FileNotFoundError, match="no-corpus.jsonl does not exist"):
        build_agent(RunSettings(model=str(tiny_llama), corpus=missing))
    with pytest.raises(ConfigError, match="max_steps must be at least 1"):
        build_agent(RunSettings(model=str(tiny_llama), max_steps=0))


def test_build_agent_takes_a_model_and_tools_built_already(wiki):
    model = ScriptedChatModel(script=[answer("Penn")])
    agent = build_agent(RunSettings(max_steps=3), model=model, tools=[wiki])
    assert agent.invoke({"question": "Who founded Philadelphia?"})["answer"] == "Penn"


def test_self_consistency_is_a_setting_of_every_door(wiki):
    settings = settings_from_env(
        RunSettings, {"ARAFT_SAMPLES": "3", "ARAFT_VOTE": "majority", "ARAFT_SAMPLE_TEMPERATURE": "0.9"}
    )  # the server's
    assert (settings.samples, settings.vote, settings.sample_temperature) == (3, "majority", 0.9)
    model = ScriptedChatModel(script=[answer("Penn")])
    agent = build_agent(settings, model=model, tools=[wiki])
    out = agent.invoke({"question": "Who founded Philadelphia?"})
    assert out["answer"] == "Penn" and out["vote"]["rule"] == "majority" and len(out["runs"]) == 3
    # the settings reach the model: one greedy run, two sampled at the server's temperature
    assert sorted(o.get("temperature") for o in model.options) == [0.0, 0.9, 0.9]
    for bad, message in (
        ({"samples": 0}, "samples is 0"),
        ({"samples": 2, "sample_temperature": 0.0}, "sample_temperature is 0.0"),
        ({"vote": "best"}, "vote is 'best': use one of majority, grounded"),
    ):
        with pytest.raises(ConfigError, match=message):
            RunSettings(**bad).check()


def test_server_settings_come_from_its_config_file_and_environment(tmp_path):
    config = tmp_path / "server.yaml"
    config.write_text("max_steps: 3\nprompt: zeroshot\nmax_seconds: 90\n")
    env = {
        "ARAFT_CONFIG": str(config),
        "ARAFT_MAX_STEPS": "4",
        "ARAFT_REPETITION_GUARD": "1",
        "ARAFT_CORPUS": str(MINI_CORPUS),
        "ARAFT_ADAPTER": "",
    }
    settings = settings_from_env(RunSettings, env)
    assert (settings.max_steps, settings.prompt, settings.max_seconds) == (4, "zeroshot", 90.0)  # env over file
    assert settings.repetition_guard is True and settings.corpus == str(MINI_CORPUS) and settings.adapter is None
    with pytest.raises(ConfigError, match="ARAFT_MAX_STEPS: max_steps: 'many' is not a int"):
        settings_from_env(RunSettings, {"ARAFT_MAX_STEPS": "many"})
    with pytest.raises(ConfigError, match="ARAFT_REPETITION_GUARD='maybe': write 1 or 0"):
        settings_from_env(RunSettings, {"ARAFT_REPETITION_GUARD": "maybe"})
    with pytest.raises(ConfigError, match="cannot read config"):
        settings_from_env(RunSettings, {"ARAFT_CONFIG": str(tmp_path / "none.yaml")})


def _calls_of(name: str, path) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name
    )


def test_only_the_factory_builds_the_agent_from_settings():
    """The CLI, the evaluator, the trainer and the server build their agent through build_agent;
    create_araft_agent is for apps (and the benchmarks, which are examples of the Python API)."""
    files = [ROOT / "araft.py", *(p for pkg in ("araft_lc", "evals", "finetune") for p in (ROOT / pkg).rglob("*.py"))]
    callers = sorted(str(p.relative_to(ROOT)) for p in files if _calls_of("create_araft_agent", p))
    assert callers == ["araft_lc/agent/factory.py"]
    assert {str(p.relative_to(ROOT)) for p in files if _calls_of("build_agent", p)} == {
        "araft_lc/cli.py",
        "araft_lc/agent/server.py",
        "evals/cli.py",
    }
