"""The llama.cpp engine on the real SmolLM2-135M GGUF, against the torch engine on the weights
dequantised from it: the same tokens up to llama.cpp's rounding, adapters converted right (their
query/key rows permuted as llama.cpp stores them), and the engine's own contract (stop strings,
streams, deadlines, token caps, batching, prefix reuse, adapters, the context check)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp", reason="the llama.cpp backend is the llamacpp extra: pip install 'araft[llamacpp]'")

from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.runtime.decoding import ContextLimitError, Decoding
from araft_lc.runtime.torch.causal_lm import ModelLoadError

TEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named "
    "after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889. "
    "Locally nicknamed La dame de fer, it was constructed as the centrepiece of the 1889 World's Fair."
)


@pytest.fixture(scope="module")
def lora(smollm2: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random LoRA on every linear layer of SmolLM2 (query and key included), as peft saves it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(smollm2[0]),
        LoraConfig(
            r=4,
            lora_alpha=8,
            init_lora_weights=False,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    )
    with torch.no_grad():  # small, as a trained adapter's are, yet enough to change the answers
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.3)
    out = tmp_path_factory.mktemp("smollm2-lora")
    model.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def lcpp(smollm2: tuple[str, str], lora: str) -> Any:
    model = AraftChatModel(
        model_id=smollm2[0],
        gguf_file=smollm2[1],
        adapters={"a": lora},
        backend="llama.cpp",
        max_batch_size=4,
        max_tokens=24,
    )
    yield model
    model.engine.close()


@pytest.fixture(scope="module")
def torch_model(smollm2: tuple[str, str], lora: str) -> Any:
    return AraftChatModel(model_id=smollm2[0], adapters={"a": lora}, backend="torch", max_batch_size=1)


def _torch_logits(model: Any, ids: list[int], adapter: Any) -> Any:
    import torch

    with torch.inference_mode(), model.engine.adapter_context(adapter):
        return model.engine.model(input_ids=torch.tensor([ids])).logits[0].float().numpy()


def _agreement(a: Any, b: Any) -> float:
    return float((a.argmax(-1) == b.argmax(-1)).mean())


def _change_cosine(base: Any, adapted: Any, torch_base: Any, torch_adapted: Any) -> float:
    """The cosine between what the adapter changes in llama.cpp's logits and in torch's: near 1
    only where the conversion is right. Argmax agreement hides most conversion bugs (a random
    adapter moves few argmaxes). Measured: 0.98 run-time and 0.97 merged; with the query/key rows
    left unpermuted, 0.93 and 0.92."""
    import numpy as np

    a = (adapted - base).ravel()
    b = (torch_adapted - torch_base)[:, : adapted.shape[1]].ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("adapter", [None, "a"])
def test_the_same_next_tokens_as_torch_up_to_rounding(lcpp: Any, torch_model: Any, adapter: Any) -> None:
    # llama.cpp multiplies Q4_1 weights by activations rounded to 8 bits; torch by fp32 weights
    # dequantised from the same file: the argmax differs only at near ties (measured 96%).
    ids = lcpp.get_token_ids(TEXT)
    ours, theirs = lcpp.engine.logits(ids, adapter), _torch_logits(torch_model, ids, adapter)
    assert _agreement(ours, theirs[:, : ours.shape[1]]) >= 0.9


def test_the_adapter_is_converted_right_and_switched_per_call(lcpp: Any, torch_model: Any) -> None:
    ids = lcpp.get_token_ids(TEXT)
    base, adapted = lcpp.engine.logits(ids, None), lcpp.engine.logits(ids, "a")
    torch_base, torch_adapted = _torch_logits(torch_model, ids, None), _torch_logits(torch_model, ids, "a")
    assert 1 - _agreement(torch_base, torch_adapted) > 0.1  # the adapter matters
    cosine = _change_cosine(base, adapted, torch_base, torch_adapted)
    assert cosine >= 0.95, f"llama.cpp's adapter changes the logits otherwise than torch's: cosine {cosine:.3f}"
    prompt = "Name a tower in Paris."
    plain = lcpp.invoke(prompt, adapter=None).content
    assert lcpp.invoke(prompt, adapter="a").content != plain
    assert lcpp.invoke(prompt, adapter=None).content == plain  # and back: the adapter is off again


def test_a_merged_adapter_answers_as_the_adapter_applied_at_run_time(
    smollm2: tuple[str, str], lora: str, lcpp: Any, torch_model: Any
) -> None:
    merged = AraftChatModel(
        model_id=smollm2[0],
        gguf_file=smollm2[1],
        adapters={"a": lora},
        adapter="a",
        merge_lora=True,
        backend="llama.cpp",
        max_batch_size=1,
    )
    ids = lcpp.get_token_ids(TEXT)
    # held to torch's adapter, not only to llama.cpp's own run-time conversion
    torch_base, torch_adapted = _torch_logits(torch_model, ids, None), _torch_logits(torch_model, ids, "a")
    ours = merged.engine.logits(ids, "a")
    cosine = _change_cosine(lcpp.engine.logits(ids, None), ours, torch_base, torch_adapted)
    assert cosine >= 0.95, f"the merged adapter changes the logits otherwise than torch's: cosine {cosine:.3f}"
    assert _agreement(ours, torch_adapted[:, : ours.shape[1]]) >= 0.9
    with pytest.raises(ValueError, match="merged into the weights"):
        merged.invoke("hi", adapter=None)
    merged.engine.close()


@pytest.mark.parametrize("adapter", [None, "a"])
def test_every_greedy_token_is_one_torch_would_choose(lcpp: Any, torch_model: Any, adapter: Any) -> None:
    """llama.cpp's greedy answers, read back by torch: at every position torch's argmax, or a token
    within a near-tie of it (measured: at most 0.58 logits below). llama.cpp rounds activations to
    8 bits, so after a near-tie the two answers go their own ways and cannot be compared as text.
    A wrong position, a stale cached key/value or a wrong adapter makes the chosen tokens unlikely
    ones under torch (a tokenisation mismatch alone put one 11 logits below)."""
    from langchain_core.messages import HumanMessage

    gaps, argmax = [], 0
    for prompt in ["Name a tower in Paris.", "What is the capital of Italy?", "Who wrote Hamlet?"]:
        ids = lcpp.get_token_ids(lcpp.prompt_text([HumanMessage(prompt)]))
        # the ids the batch loop chose (its text, tokenised again, may split otherwise)
        answer = list(lcpp.engine.batcher.submit(ids, Decoding(adapter, (), 16, 0.0, 1.0, None), None))
        logits = _torch_logits(torch_model, ids + answer, adapter)[len(ids) - 1 : -1]
        chosen = logits[range(len(answer)), answer]
        gaps += list(logits.max(-1) - chosen)
        argmax += int(answer[0] == logits[0].argmax())
    assert argmax == 3  # the first token is torch's on every prompt
    assert max(gaps) < 1.0, f"a greedy token {max(gaps):.2f} logits below torch's best"


def test_stop_strings_cut_the_text_and_a_stream_never_shows_one(lcpp: Any) -> None:
    prompt = "Count from one to ten."
    whole = lcpp.invoke(prompt, max_tokens=40).content
    stop = whole[len(whole) // 2 : len(whole) // 2 + 3]  # three characters from the middle, maybe two tokens
    cut = lcpp.invoke(prompt, max_tokens=40, stop=[stop])
    assert cut.content == whole.split(stop)[0] and cut.response_metadata["stopped"]
    pieces = [c.content for c in lcpp.stream(prompt, max_tokens=40, stop=[stop])]
    assert "".join(pieces) == cut.content and not any(stop in p for p in pieces)
    assert "".join(c.content for c in lcpp.stream(prompt, max_tokens=40)) == whole


def test_a_stream_is_read_in_the_callers_thread(lcpp: Any) -> None:
    """The batch loop's thread hands each token over; no thread of the stream's own runs it."""
    lcpp.invoke("Count from one to ten.", max_tokens=4)  # the batch loop's thread is running
    before = threading.active_count()
    stream = lcpp.stream("Count from one to ten.", max_tokens=20)
    first = next(stream)
    assert threading.active_count() == before
    assert (
        first.content + "".join(c.content for c in stream)
        == lcpp.invoke("Count from one to ten.", max_tokens=20).content
    )


def test_the_token_cap_and_the_deadline_end_a_call(lcpp: Any) -> None:
    assert lcpp.invoke("Tell me a long story.", max_tokens=5).usage_metadata["output_tokens"] == 5
    late = lcpp.invoke("Tell me a long story.", max_tokens=200, deadline=time.time() - 1)
    assert late.usage_metadata["output_tokens"] == 1  # the deadline is asked after each token


def test_concurrent_calls_share_steps_and_answer_as_alone(lcpp: Any) -> None:
    prompts = [f"What is {n} plus {n}?" for n in range(4)]
    alone = [lcpp.invoke(p).content for p in prompts]
    together: dict[int, str] = {}
    batches = lcpp.engine.batcher.batches
    before = sum(n * steps for n, steps in batches.items() if n > 1)

    def call(i: int) -> None:
        together[i] = lcpp.invoke(prompts[i]).content

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(n * steps for n, steps in batches.items() if n > 1) > before  # rows shared decode steps
    assert [together[i] for i in range(4)] == alone


def test_a_runs_next_call_reads_only_what_is_new(lcpp: Any) -> None:
    first = "Question: where is the Eiffel Tower? Think step by step."
    answer = lcpp.invoke(first).content
    reused = lcpp.engine.batcher.reused_tokens
    grown = lcpp.invoke([("human", first), ("ai", answer), ("human", "And who built it?")])
    # every prompt shares the chat template's first tokens with any earlier call: the reuse must
    # reach through this run's question and the answer the model wrote to it
    assert lcpp.engine.batcher.reused_tokens - reused >= len(lcpp.get_token_ids(first + answer))
    assert grown.content


def test_a_seed_reproduces_a_sampled_call(lcpp: Any) -> None:
    def sampled(seed: int) -> str:
        return lcpp.invoke("Write a word.", temperature=1.0, seed=seed, max_tokens=12).content

    one = sampled(7)
    assert sampled(7) == one
    # and it samples: other seeds draw other words, and not always greedy's
    others = {sampled(seed) for seed in range(4)}
    assert len(others | {one}) >= 3 and others != {lcpp.invoke("Write a word.", max_tokens=12).content}


def test_a_prompt_past_the_context_is_refused_before_any_prefill(smollm2: tuple[str, str]) -> None:
    from araft_lc.runtime.llama_cpp.engine import LlamaCppEngine

    model = AraftChatModel(model_id=smollm2[0], gguf_file=smollm2[1], backend="llama.cpp", max_batch_size=1)
    small = LlamaCppEngine(smollm2[1], model.tokenizer, max_batch_size=1, context_length=64)
    model.engine.close()
    model._engine = small  # the chat model's own path, on a context of 64 positions
    model.invoke("Hi.", max_tokens=4)
    prefilled = small.batcher.stats["prefill_tokens"]
    assert prefilled > 0  # a prompt that fits is prefilled, and counted
    with pytest.raises(ContextLimitError, match="past the model's context of 64"):
        model.invoke(TEXT, max_tokens=16)
    assert small.batcher.stats["prefill_tokens"] == prefilled
    small.close()


def test_the_backend_is_llama_cpp_where_it_can_run_else_torch(
    smollm2: tuple[str, str], tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import araft_lc.runtime.llama_cpp.lib as lib

    auto = AraftChatModel(model_id=smollm2[0], gguf_file=smollm2[1], max_batch_size=1)
    assert auto.backend == "llama.cpp" and auto._identifying_params["backend"] == "llama.cpp"
    auto.engine.close()
    assert AraftChatModel(model_id=str(tiny_llama)).backend == "torch"  # no GGUF
    with pytest.raises(ValueError, match="gguf_file="):
        AraftChatModel(model_id=str(tiny_llama), backend="llama.cpp")
    with pytest.raises(ValueError, match="static"):
        AraftChatModel(model_id=smollm2[0], gguf_file=smollm2[1], backend="llama.cpp", decode="static")
    monkeypatch.setattr(lib, "llama_cpp_installed", lambda: False)
    assert AraftChatModel(model_id=smollm2[0], gguf_file=smollm2[1]).backend == "torch"
    with pytest.raises(ModelLoadError, match=r"araft\[llamacpp\]"):
        AraftChatModel(model_id=smollm2[0], gguf_file=smollm2[1], backend="llama.cpp")


def test_an_adapter_llama_cpp_cannot_run_is_refused_in_one_line(
    smollm2: tuple[str, str], lora: str, tmp_path: Path
) -> None:
    import json
    import shutil

    dora = tmp_path / "dora"
    shutil.copytree(lora, dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ModelLoadError, match="adapter 'd'.*not a plain LoRA.*torch backend"):
        AraftChatModel(model_id=smollm2[0], gguf_file=smollm2[1], adapters={"d": str(dora)}, backend="llama.cpp")


def test_adapters_are_read_without_torch_as_safetensors_reads_them(lora: str) -> None:
    from safetensors.torch import load_file

    from araft_lc.chat.presets import SHIPPED_ADAPTERS
    from araft_lc.runtime.llama_cpp.gguf_lora import read_safetensors

    for folder in (Path(lora), SHIPPED_ADAPTERS / "araft-smollm2"):  # fp32, and the shipped bf16
        path = folder / "adapter_model.safetensors"
        ours, theirs = read_safetensors(path), load_file(str(path))
        assert ours.keys() == theirs.keys()
        for name, tensor in theirs.items():
            assert (ours[name] == tensor.float().numpy()).all(), name


@pytest.mark.parametrize("merged", [False, True])
def test_a_damaged_adapter_is_refused_in_one_line(
    smollm2: tuple[str, str], lora: str, tmp_path: Path, merged: bool
) -> None:
    import shutil

    cut = tmp_path / "cut"
    shutil.copytree(lora, cut)
    weights = cut / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"^adapter 'a': .*cut short or damaged.*save or copy the adapter again$"):
        AraftChatModel(
            model_id=smollm2[0],
            gguf_file=smollm2[1],
            adapters={"a": str(cut)},
            adapter="a",
            merge_lora=merged,
            backend="llama.cpp",
        )
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        AraftChatModel(
            model_id=smollm2[0],
            gguf_file=smollm2[1],
            adapters={"a": str(cut)},
            adapter="a",
            merge_lora=merged,
            backend="llama.cpp",
        )


@pytest.mark.parametrize("backend", ["torch", "llama.cpp"])
def test_the_backend_flag_reaches_the_model(backend: str) -> None:
    """``--backend`` as the command line parses it, through the factory, to the engine that runs."""
    import argparse

    from araft_lc.agent.factory import settings_model
    from araft_lc.agent.settings import RunSettings, add_settings_flags, settings_from_args

    parser = argparse.ArgumentParser()
    add_settings_flags(parser, RunSettings)
    settings = settings_from_args(RunSettings, parser.parse_args(["--model", "araft-smollm2", "--backend", backend]))
    model = settings_model(settings)
    assert model.backend == backend and type(model.engine).__name__ == (
        "LlamaCppEngine" if backend == "llama.cpp" else "DecodeEngine"
    )
    model.engine.close()
