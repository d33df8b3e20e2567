"""araft_lc.chat.model_spec: every form of a model spec parsed once; checks, local ids and loading."""

import dataclasses

import pytest

from araft_lc.chat.chat_model import AraftChatModel, ModelLoadError
from araft_lc.chat.model_spec import ModelSpec, load_chat_model
from araft_lc.chat.presets import LLAMA2_CHAT


def test_each_form_parses_to_its_kind(tiny_llama):
    assert ModelSpec.parse(" araft-sft ") == ModelSpec("araft-sft", "preset", "araft-sft")
    assert ModelSpec.parse("hf:org/name+/tmp/adapter") == ModelSpec(
        "hf:org/name+/tmp/adapter", "hf", "org/name", adapter="/tmp/adapter"
    )
    assert ModelSpec.parse(str(tiny_llama)) == ModelSpec(str(tiny_llama), "hf", str(tiny_llama))
    assert ModelSpec.parse("org/name").kind == "hf"  # a Hub id
    assert ModelSpec.parse("openai:araft-dpo@http://127.0.0.1:8000/v1") == ModelSpec(
        "openai:araft-dpo@http://127.0.0.1:8000/v1", "openai", "araft-dpo", base_url="http://127.0.0.1:8000/v1"
    )
    assert ModelSpec.parse("oracle") == ModelSpec("oracle", "teacher", "oracle")
    assert ModelSpec.parse("visible").kind == "teacher"
    assert str(ModelSpec.parse(" araft-sft ")) == "araft-sft"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelSpec.parse("araft-sft").name = "x"  # type: ignore[misc]


def test_what_does_not_parse_is_one_line_naming_the_forms():
    with pytest.raises(
        ModelLoadError,
        match=r"^unknown model spec 'gpt-nope': use a preset \(.*araft-sft.*\), "
        r"hf:PATH_OR_ID\[\+ADAPTER\], a local model folder, or "
        r"openai:MODEL@BASE_URL$",
    ):
        ModelSpec.parse("gpt-nope")
    for bad in ("openai:model-without-url", "openai:@http://x", "openai:m@"):
        with pytest.raises(ValueError, match=r"^bad model spec .*: write openai:MODEL@BASE_URL$"):
            ModelSpec.parse(bad)


def test_local_id_is_the_weights_folder_or_hub_id():
    assert ModelSpec.parse("hf:/models/base+/adapters/sft").local_id == "/models/base"
    assert ModelSpec.parse("araft-sft").local_id == LLAMA2_CHAT
    with pytest.raises(ModelLoadError, match="is a server, not local weights"):
        _ = ModelSpec.parse("openai:m@http://x").local_id
    with pytest.raises(ModelLoadError, match="is a teacher, not local weights"):
        _ = ModelSpec.parse("oracle").local_id


def test_the_shipped_adapter_records_the_prompt_its_preset_names():
    from araft_lc.chat.presets import PRESETS
    from araft_lc.react.prompt import trained_prompt

    shipped = PRESETS["araft-smollm2"]
    assert trained_prompt(shipped.adapters["araft"]) == shipped.prompt == "zeroshot_turns"
    assert trained_prompt(None) is None and trained_prompt("/no/such/adapter") is None
    assert trained_prompt("FDeRubeis/araft_trained_dpo") is None  # a Hub id: its preset says (fewshot)


def test_check_names_what_is_missing(tiny_llama, adapters, tmp_path):
    ModelSpec.parse(str(tiny_llama)).check(str(adapters["a"]))
    ModelSpec.parse(f"hf:{tiny_llama}+{adapters['a']}").check()
    ModelSpec.parse("openai:m@http://127.0.0.1:9/v1").check()  # no network: that is check_server's
    cases = {
        (str(tmp_path / "none"), None): "model folder .* does not exist",
        (str(tmp_path), None): "is not a model folder \\(it has no config.json\\)",
        (str(tiny_llama), str(tmp_path / "none")): "adapter folder .* does not exist",
        (f"hf:{tiny_llama}+{tmp_path}", None): "is not a LoRA adapter folder",
        ("oracle", None): "the oracle teacher answers from given HotpotQA questions: use it with araft generate",
    }
    for (spec, adapter), message in cases.items():
        with pytest.raises(ModelLoadError, match=message):
            ModelSpec.parse(spec).check(adapter)


def test_load_builds_the_chat_model_the_spec_names(tiny_llama, adapters):
    model = ModelSpec.parse(f"hf:{tiny_llama}+{adapters['a']}").load(max_new_tokens=4)
    assert isinstance(model, AraftChatModel) and model.max_new_tokens == 4
    assert model.adapter == "adapter" and model.adapters == {"adapter": str(adapters["a"])}
    # --adapter wins over the spec's own
    model = load_chat_model(f"hf:{tiny_llama}+{adapters['a']}", adapter=str(adapters["b"]), max_new_tokens=4)
    assert model.adapters == {"adapter": str(adapters["b"])}
    served = ModelSpec.parse("openai:araft-dpo@http://127.0.0.1:8000/v1").load(max_new_tokens=7, request_timeout=3)
    assert type(served).__name__ == "ChatOpenAI" and served.model_name == "araft-dpo" and served.max_tokens == 7
    with pytest.raises(ValueError, match="--adapter applies to local models"):
        ModelSpec.parse("openai:m@http://x").load(adapter=str(adapters["a"]))
    with pytest.raises(ModelLoadError, match="the visible teacher answers from given HotpotQA questions"):
        load_chat_model("visible")


def test_teachers_are_built_where_questions_live():
    from evals.hotpotqa import Question
    from evals.oracle import OracleChatModel
    from evals.teachers import load_model

    question = Question(id="q1", question="Where is Lucca?", answer="Italy")
    assert isinstance(load_model(ModelSpec.parse("oracle"), [question]), OracleChatModel)
    with pytest.raises(ValueError, match="the visible teacher searches the agent's Wikipedia backend"):
        load_model(ModelSpec.parse("visible"), [question])
