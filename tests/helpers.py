"""What tests share besides fixtures (those are in conftest.py): paths, the Araft grammar's
steps, a scripted model at the edge of the world, tools that hang, a model folder with another
context. ``from helpers import ...``; nothing here touches the network."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, StructuredTool, tool

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
MINI_CORPUS = TEST_DATA / "mini_corpus.jsonl"
HANG_S = 60.0  # how long a hanging tool would hold a run, unbounded


# `araft train` on a CPU with a tiny model: the flags every training test shares
CPU_TRAINING = ["--load_in_4bit=false", "--use_cpu=true", "--bf16=false", "--target_modules", "all-linear",
                "--learning_rate", "5e-3"]  # fmt: skip


def golden_sft_records(out: Path) -> Path:
    """``araft convert sft`` of the golden trajectories (zeroshot_turns, one record a trajectory)
    at ``out``: the records every training test trains on."""
    from araft import main

    code = main(
        ["convert", "sft", str(TEST_DATA / "golden" / "trajectories.jsonl"), "--out", str(out), "--prompt-style",
         "zeroshot_turns", "--granularity", "trajectory"]
    )  # fmt: skip
    assert code == 0
    return out


def hotpotqa_dir() -> Path:
    return Path(os.environ.get("ARAFT_DATA_DIR", ROOT.parent / "shared" / "data" / "hotpotqa"))


def act(tool: str, tool_input: str, thought: str = "look it up") -> str:
    """A model's step in the Araft grammar: a Thought, then an action of ``tool``."""
    return f"Thought: {thought}\nAction: [action: {tool}, action_input: {tool_input}]"


def answer(a: str) -> str:
    """A model's last step: the answer."""
    return act("Answer", a, thought="I know it")


def with_context(model_dir: Path, out: Path, positions: int) -> Path:
    """A copy of the model folder ``model_dir`` at ``out`` whose config gives it ``positions``
    positions of context (a Llama's rotary positions work at any length; only the check differs)."""
    shutil.copytree(model_dir, out)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "max_position_embeddings": positions}))
    return out


def hanging_tools(
    release: threading.Event, name: str = "Slow", hang_s: float = HANG_S, cancelled: Optional[threading.Event] = None
) -> tuple[BaseTool, BaseTool]:
    """A sync and an async tool named ``name`` that hang until ``release`` is set (at most
    ``hang_s``), then return "late". The async one sets ``cancelled`` when it is cancelled."""

    def wait(query: str) -> str:
        release.wait(hang_s)
        return "late"

    async def await_(query: str) -> str:
        try:
            for _ in range(int(hang_s * 10)):
                if release.is_set():
                    break
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            if cancelled is not None:
                cancelled.set()
            raise
        return "late"

    return (
        tool(name, wait, description="Looks something up, slowly."),
        StructuredTool.from_function(coroutine=await_, name=name, description="Looks something up, slowly."),
    )


class ScriptedChatModel(BaseChatModel):
    """A fake model at the edge of the world: it answers from a script, in order, and records
    each prompt and the call's options. Like a real server it honours ``stop`` by cutting its text
    at the first one."""

    script: list[str]
    prompts: list[list[BaseMessage]] = []
    stops: list[Optional[list[str]]] = []
    options: list[dict[str, Any]] = []  # each call's keyword arguments (temperature, seed, ...)
    fail_on_call: Optional[int] = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        i = len(self.prompts)
        self.prompts.append(list(messages))
        self.stops.append(stop)
        self.options.append(dict(kwargs))
        if self.fail_on_call == i:
            raise RuntimeError("model server went away")
        text = self.script[min(i, len(self.script) - 1)]
        for s in stop or ():
            if s in text:
                text = text[: text.index(s)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


@functools.lru_cache(maxsize=1)
def train_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained here on the Araft prompt and the mini corpus (600
    tokens; any text round-trips): the tiny models' tokenizer, Llama-2's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from araft_lc.react.prompt import load_prompt

    style = load_prompt("fewshot")
    texts = [style.system, *style.examples, MINI_CORPUS.read_text(encoding="utf-8")] * 4
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


class ScriptedLM:
    """A causal LM at the edge of the world (the 7B model we cannot run here), for
    ``AraftChatModel(model=ScriptedLM(reply), tokenizer=train_tokenizer(), max_batch_size=1,
    prefix_cache=False)``: everything of araft_lc runs, from the prompt's rendering to the
    tokens' decoding and the stop strings' cutting.

    ``generate`` writes the tokens of ``reply(prompt_text)`` and then EOS, one at a time, as
    transformers' ``generate`` writes a model's: it streams each token to a ``streamer`` and
    stops at EOS, at ``max_new_tokens``, at a stop string (as ``StopStringCriteria``: the token
    that completes one is the last) or when a stopping criterion (a deadline) says so. It keeps
    no KV cache, so it takes one row at a time and no prefix cache."""

    def __init__(self, reply: Callable[[str], str], context: int = 4096) -> None:
        import torch

        self.reply, self.tokenizer = reply, train_tokenizer()
        self.device = torch.device("cpu")
        self.config = SimpleNamespace(max_position_embeddings=context)
        self.name_or_path = "scripted-7b"
        self.prompts: list[str] = []  # each call's prompt text, as the model read it

    def generate(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        generation_config: Any = None,
        streamer: Any = None,
        stopping_criteria: Any = None,
        **kwargs: Any,
    ) -> Any:
        import torch

        assert input_ids.shape[0] == 1, "ScriptedLM takes one row at a time (max_batch_size=1)"
        prompt = self.tokenizer.decode(input_ids[0])
        self.prompts.append(prompt)
        eos = self.tokenizer.eos_token_id
        script = self.tokenizer(self.reply(prompt), add_special_tokens=False)["input_ids"] + [eos]
        stops = (generation_config.stop_strings or []) if generation_config is not None else []
        if streamer is not None:
            streamer.put(input_ids)
        out: list[int] = []
        for token in script[: generation_config.max_new_tokens]:
            out.append(token)
            if streamer is not None:
                streamer.put(torch.tensor([token]))
            so_far = torch.tensor([input_ids[0].tolist() + out])
            if token == eos or any(s in self.tokenizer.decode(out) for s in stops):
                break
            if stopping_criteria is not None and bool(stopping_criteria(so_far, None).all()):
                break
        if streamer is not None:
            streamer.end()
        return SimpleNamespace(sequences=torch.tensor([input_ids[0].tolist() + out]), cache=None)


def scripted_araft(reply: Callable[[str], str], **fields: Any) -> Any:
    """An ``AraftChatModel`` over a ``ScriptedLM`` answering ``reply(prompt_text)``; its prompts
    are ``model.engine.model.prompts``."""
    from araft_lc.chat.chat_model import AraftChatModel

    return AraftChatModel(
        model=ScriptedLM(reply), tokenizer=train_tokenizer(), max_batch_size=1, prefix_cache=False, **fields
    )
