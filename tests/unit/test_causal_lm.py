"""araft_lc.runtime.torch.causal_lm: one loader of causal LMs and adapters for inference, training and export."""

import json
import re
import shutil

import pytest
import torch
from helpers import ROOT

from araft import main
from araft_lc.runtime.torch.causal_lm import ModelLoadError, load_causal_lm, load_tokenizer


def _lora(model):
    return [p for n, p in model.named_parameters() if "lora_" in n]


def test_loads_fp32_on_a_cpu_in_eval_mode(tiny_llama):
    model = load_causal_lm(str(tiny_llama))
    assert model.dtype == torch.float32 and str(model.device) == "cpu" and not model.training
    assert load_causal_lm(str(tiny_llama), dtype=torch.bfloat16).dtype == torch.bfloat16


def test_adapters_load_active_and_frozen_or_trainable(tiny_llama, adapters):
    ids = torch.tensor([[1, 5, 9, 12]])
    base = load_causal_lm(str(tiny_llama))
    one = load_causal_lm(str(tiny_llama), adapters=str(adapters["a"]))
    assert one.active_adapter == "default" and not any(p.requires_grad for p in _lora(one))
    two = load_causal_lm(str(tiny_llama), adapters={"a": str(adapters["a"]), "b": str(adapters["b"])})
    assert two.active_adapter == "a" and set(two.peft_config) == {"a", "b"}
    with torch.no_grad():
        assert torch.allclose(one(ids).logits, two(ids).logits)
        assert not torch.allclose(base(ids).logits, one(ids).logits)
    trainable = load_causal_lm(str(tiny_llama), adapters=str(adapters["a"]), trainable=True)
    assert all(p.requires_grad for p in _lora(trainable))


def test_load_errors_are_one_line(tiny_llama, adapters, tmp_path):
    with pytest.raises(ModelLoadError, match=r"^cannot load model 'nobody/no-such-model' \(.*`hf download"):
        load_causal_lm("nobody/no-such-model")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="needs a CUDA GPU .* --no-4bit"):
            load_causal_lm(str(tiny_llama), quantize_4bit=True)
    with pytest.raises(ModelLoadError, match=r"^cannot load adapter 'default' from .*adapter_config.json"):
        load_causal_lm(str(tiny_llama), adapters=str(tmp_path))
    # an adapter trained on another model: peft's shape mismatch (a RuntimeError), in one line
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_llama)
    config.hidden_size, config.intermediate_size = 32, 64
    LlamaForCausalLM(config).save_pretrained(tmp_path / "other")
    with pytest.raises(
        ModelLoadError,
        match=r"^cannot load adapter 'default' from .* on .*other' \(RuntimeError: "
        r".*\): pass an adapter trained on this model$",
    ) as e:
        load_causal_lm(str(tmp_path / "other"), adapters=str(adapters["a"]))
    assert "\n" not in str(e.value)


def test_tokenizer_pads_with_eos_when_it_has_no_pad_token(tiny_llama, tmp_path):
    assert load_tokenizer(str(tiny_llama)).pad_token == "<pad>"
    folder = tmp_path / "tok"
    shutil.copytree(tiny_llama, folder)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    special = (
        json.loads((folder / "special_tokens_map.json").read_text())
        if (folder / "special_tokens_map.json").is_file()
        else None
    )
    if special is not None:
        special.pop("pad_token", None)
        (folder / "special_tokens_map.json").write_text(json.dumps(special))
    assert load_tokenizer(str(folder)).pad_token == "</s>"
    with pytest.raises(ModelLoadError, match=r"^cannot load tokenizer .*: pass a folder holding tokenizer files"):
        load_tokenizer(str(tmp_path / "none"))


# -- a model folder that cannot load, for whatever reason, is one line naming it, in every command


@pytest.fixture(scope="module")
def misdescribed(tiny_llama, tmp_path_factory):
    """A model folder whose config cannot describe its weights (huggingface_hub's
    StrictDataclassClassValidationError, neither a ValueError nor an OSError)."""
    folder = tmp_path_factory.mktemp("misdescribed") / "model"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_attention_heads"] = 5  # 64 is no multiple of 5
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_ask_on_a_misdescribed_model_is_one_line(misdescribed, mini_index, capsys):
    # an index already built: stderr holds the error alone, whichever tests ran before
    assert main(["ask", "q?", "--model", str(misdescribed), "--corpus", str(mini_index)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"araft: error: cannot load model '{misdescribed}' (StrictDataclassClassValidationError")
    assert "not a multiple of the number of attention heads" in err and len(err.strip().splitlines()) == 1


def test_train_on_a_misdescribed_model_is_one_line(misdescribed, tmp_path, capsys):
    data = ROOT / "tests" / "data" / "golden" / "expected_sft_step.jsonl"
    code = main(
        [
            "train",
            "sft",
            "--data",
            str(data),
            "--output_dir",
            str(tmp_path / "a"),
            "--model",
            str(misdescribed),
            "--load_in_4bit=false",
            "--use_cpu=true",
            "--bf16=false",
            "--max_steps",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    line = err.strip().splitlines()[-1]
    # the tokenizer reads the same config first: either load names the folder and the cause
    assert re.match(
        rf"araft: error: cannot load (tokenizer|model) '{misdescribed}' "
        r"\(StrictDataclassClassValidationError",
        line,
    ), line
    assert "Traceback" not in err
