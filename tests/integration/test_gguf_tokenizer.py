"""What the llama.cpp backend uses instead of torch and transformers, held to what it replaces:
the GGUF's own tokenizer and chat template (``GGUFTokenizer``) against the transformers tokenizer
converted from the same GGUF, stop strings on text against ``StopStringCriteria``, the streamer,
and sampling in numpy."""

from __future__ import annotations

import random
from typing import Any

import pytest

pytest.importorskip("llama_cpp", reason="the llama.cpp backend is the llamacpp extra: pip install 'araft[llamacpp]'")

from araft_lc.react.chat_format import render_chat
from araft_lc.runtime.decoding import Decoding, draw_token_numpy, numpy_generator

# An agent's exchange: the system turn, a question, a step, an observation (with non-ASCII text).
TURNS = [
    {
        "role": "system",
        "content": "Answer the question with the tools.\nTools: [action: Wikipedia, action_input: "
        "a title] and [action: Answer, action_input: the answer]",
    },
    {"role": "user", "content": "Question: Which genus has more species, Bactris and Épigaea?"},
    {
        "role": "assistant",
        "content": "Thought: I need to look up Epigaea.\nAction: [action: Wikipedia, action_input: Epigaea]",
    },
    {
        "role": "user",
        "content": "Observation: Epigaea is a genus comprising three species of flowering plants "
        "in the Ericaceae (日本: イワナシ). It was named in 1753.",
    },
]


@pytest.fixture(scope="module")
def tokenizers(smollm2: tuple[str, str]) -> tuple[Any, Any]:
    """(the GGUF's own, transformers' converted from the same GGUF)."""
    from araft_lc.runtime.llama_cpp.gguf_tokenizer import GGUFTokenizer
    from araft_lc.runtime.torch.causal_lm import load_tokenizer

    return GGUFTokenizer(smollm2[1]), load_tokenizer(smollm2[0])


@pytest.mark.parametrize("upto", [2, 3, 4])
def test_a_prompt_renders_to_the_same_text_and_ids(tokenizers: tuple[Any, Any], upto: int) -> None:
    ours, theirs = tokenizers
    for generation in (True, False):
        text = render_chat(ours, TURNS[:upto], add_generation_prompt=generation)
        assert text == render_chat(theirs, TURNS[:upto], add_generation_prompt=generation)
        assert ours(text)["input_ids"] == theirs(text, add_special_tokens=False)["input_ids"]
    assert (ours.eos_token_id, ours.eos_token, ours.bos_token, len(ours)) == (
        theirs.eos_token_id,
        theirs.eos_token,
        theirs.bos_token,
        len(theirs),
    )


def test_ids_decode_to_the_same_text(tokenizers: tuple[Any, Any]) -> None:
    ours, theirs = tokenizers
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(len(theirs)) for _ in range(rng.randrange(1, 30))]
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True)


def test_stop_strings_end_a_row_where_transformers_criteria_does(tokenizers: tuple[Any, Any]) -> None:
    from transformers import StopStringCriteria

    from araft_lc.runtime.batch_loop import StopStrings, TextStopStrings

    ours, theirs = tokenizers
    text = render_chat(theirs, TURNS, add_generation_prompt=False) + "Thought: so Bactris.\nObservation: none"
    ids = ours(text)["input_ids"]
    for stop in [("Observation:",), ("Obs", "tion"), ("pec",), ("s.\n",), ("Bactris and",), ("イワ",)]:
        on_text = TextStopStrings.of(ours, stop)
        criteria = StopStrings.of(StopStringCriteria(theirs, list(stop)))
        decided = [(k, on_text.ended(ids[:k])) for k in range(1, len(ids) + 1)]
        assert decided == [(k, criteria.ended(ids[:k])) for k in range(1, len(ids) + 1)], stop
        assert any(ended for _, ended in decided), stop  # each stop string occurs in the text


def test_a_stream_joins_to_the_decoded_text_and_never_splits_a_character(tokenizers: tuple[Any, Any]) -> None:
    from araft_lc.runtime.text_engine import TokenStreamer

    ours, _ = tokenizers
    ids = ours(TURNS[3]["content"])["input_ids"]
    streamer = TokenStreamer(ours)
    for token in ids:
        streamer.put(token)
    streamer.end()
    pieces = list(streamer)
    assert "".join(pieces) == ours.decode(ids, skip_special_tokens=True)
    assert not any("\ufffd" in p for p in pieces) and len(pieces) < len(ids)  # 日本 spans tokens


def _decoding(temperature: float, top_p: float = 1.0, seed: Any = 0) -> Decoding:
    return Decoding(None, (), 8, temperature, top_p, seed)


def test_numpy_sampling_draws_from_the_warped_distribution() -> None:
    import numpy as np

    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05] + [1e-9] * 60, dtype=np.float32))
    assert numpy_generator(_decoding(0.0)) is None and draw_token_numpy(logits, _decoding(0.0), None) == 0
    generator = numpy_generator(_decoding(1.0))
    counts = np.bincount([draw_token_numpy(logits, _decoding(1.0), generator) for _ in range(4000)], minlength=64)
    assert np.abs(counts[:4] / 4000 - [0.5, 0.3, 0.15, 0.05]).max() < 0.03
    assert counts[4:].sum() == 0  # past the top 50, and near zero: never
    nucleus = [draw_token_numpy(logits, _decoding(1.0, top_p=0.7), generator) for _ in range(500)]
    assert set(nucleus) == {0, 1}  # 0.5 + 0.3 covers 0.7
    hot = [draw_token_numpy(logits, _decoding(5.0), generator) for _ in range(2000)]
    assert np.bincount(hot, minlength=4)[3] > 2000 * 0.05 * 2  # a higher temperature flattens it


def test_a_seed_reproduces_numpy_draws_and_another_seed_does_not() -> None:
    import numpy as np

    logits = np.random.default_rng(1).normal(size=200).astype(np.float32)

    def draws(seed: int) -> list[int]:
        generator = numpy_generator(_decoding(1.0, seed=seed))
        return [draw_token_numpy(logits, _decoding(1.0, seed=seed), generator) for _ in range(20)]

    assert draws(7) == draws(7) and draws(7) != draws(8)
