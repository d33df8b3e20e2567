"""Shared fixtures: a tiny random Llama with a locally trained tokenizer, indexes, a scripted model.

Nothing here touches the network: the Hub is off (HF_HUB_OFFLINE=1) and every model is built here.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path
from typing import Any, Optional

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
MINI_CORPUS = TEST_DATA / "mini_corpus.jsonl"


def hotpotqa_dir() -> Path:
    return Path(os.environ.get("ARAFT_DATA_DIR", ROOT.parent / "shared" / "data" / "hotpotqa"))


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


def act(tool: str, tool_input: str, thought: str = "look it up") -> str:
    """A model's step in the Araft grammar: a Thought, then an action of ``tool``."""
    return f"Thought: {thought}\nAction: [action: {tool}, action_input: {tool_input}]"


def answer(a: str) -> str:
    """A model's last step: the answer."""
    return act("Answer", a, thought="I know it")


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


def _train_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from transformers import PreTrainedTokenizerFast

    from araft_lc.react.prompt import load_prompt

    style = load_prompt("fewshot")
    texts = [style.system, *style.examples, MINI_CORPUS.read_text(encoding="utf-8")] * 4
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


def with_context(model_dir: Path, out: Path, positions: int) -> Path:
    """A copy of the model folder ``model_dir`` at ``out`` whose config gives it ``positions``
    positions of context (a Llama's rotary positions work at any length; only the check differs)."""
    import json
    import shutil

    shutil.copytree(model_dir, out)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "max_position_embeddings": positions}))
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random LlamaForCausalLM and its tokenizer (no chat template: Llama-2 format)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        initializer_range=0.5,  # large random weights: varied output, not one token repeated
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
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
        peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                                     init_lora_weights=False))
        paths[name] = tmp_path_factory.mktemp(f"adapter-{name}")
        peft_model.save_pretrained(paths[name])
    return paths


class ScriptedChatModel(BaseChatModel):
    """A fake model at the edge of the world: it answers from a script, in order, and records
    each prompt. Like a real server it honours ``stop`` by cutting its text at the first one."""

    script: list[str]
    prompts: list[list[BaseMessage]] = []
    stops: list[Optional[list[str]]] = []
    fail_on_call: Optional[int] = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Optional[list[str]] = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        i = len(self.prompts)
        self.prompts.append(list(messages))
        self.stops.append(stop)
        if self.fail_on_call == i:
            raise RuntimeError("model server went away")
        text = self.script[min(i, len(self.script) - 1)]
        for s in stop or ():
            if s in text:
                text = text[: text.index(s)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


@pytest.fixture
def scripted() -> type[ScriptedChatModel]:
    return ScriptedChatModel
