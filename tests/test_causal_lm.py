"""araft_lc.runtime.causal_lm: one loader of causal LMs and adapters for inference, training and export."""

import json
import shutil

import pytest
import torch

from araft_lc.runtime.causal_lm import ModelLoadError, load_causal_lm, load_tokenizer


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
    with pytest.raises(ModelLoadError, match=r"^cannot load adapter 'default' from .* on .*other' \(RuntimeError: "
                                             r".*\): pass an adapter trained on this model$") as e:
        load_causal_lm(str(tmp_path / "other"), adapters=str(adapters["a"]))
    assert "\n" not in str(e.value)


def test_tokenizer_pads_with_eos_when_it_has_no_pad_token(tiny_llama, tmp_path):
    assert load_tokenizer(str(tiny_llama)).pad_token == "<pad>"
    folder = tmp_path / "tok"
    shutil.copytree(tiny_llama, folder)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    special = json.loads((folder / "special_tokens_map.json").read_text()) \
        if (folder / "special_tokens_map.json").is_file() else None
    if special is not None:
        special.pop("pad_token", None)
        (folder / "special_tokens_map.json").write_text(json.dumps(special))
    assert load_tokenizer(str(folder)).pad_token == "</s>"
    with pytest.raises(ModelLoadError, match=r"^cannot load tokenizer .*: pass a folder holding tokenizer files"):
        load_tokenizer(str(tmp_path / "none"))
