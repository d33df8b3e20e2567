"""DecodeEngine and its decoding records on their own, without the chat model: token ids in,
text out, on a tiny random Llama."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from araft_lc.runtime.decoding import Completion, ContextLimitError, Decoding, cut_at_stop_strings
from araft_lc.runtime.torch.causal_lm import load_causal_lm, load_tokenizer
from araft_lc.runtime.torch.engine import DecodeEngine

PROMPT = "<s>[INST] Question: Where is Lucca? [/INST]"
GREEDY = Decoding(adapter=None, stop=(), max_new_tokens=16, temperature=0.0, top_p=1.0, seed=None)


@pytest.fixture(scope="module")
def loaded(tiny_llama):
    return load_causal_lm(str(tiny_llama)), load_tokenizer(str(tiny_llama))


@pytest.fixture(scope="module")
def engine(loaded):
    return DecodeEngine(*loaded, max_batch_size=1)


def reference(loaded, ids, max_new_tokens=16):
    """What transformers' own greedy ``generate`` writes after ``ids``: new token ids."""
    import torch

    model, tokenizer = loaded
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return out[0, len(ids) :].tolist()


def test_complete_writes_what_generate_writes(engine, loaded):
    ids = engine.encode(PROMPT)
    assert ids == loaded[1](PROMPT, add_special_tokens=False)["input_ids"]  # the text brings its own <s>
    done = engine.complete(ids, GREEDY)
    new = reference(loaded, ids)
    assert done == Completion(loaded[1].decode(new, skip_special_tokens=True), len(ids), len(new), False)


def test_stop_strings_cut_the_text_and_end_generation(engine):
    ids = engine.encode(PROMPT)
    free = engine.complete(ids, GREEDY).text
    stop = free[len(free) // 2 : len(free) // 2 + 4]
    done = engine.complete(ids, Decoding(None, (stop,), 16, 0.0, 1.0, None))
    assert done.stopped and done.text == free[: free.index(stop)] and done.new_tokens < 16


def test_stream_yields_the_completion_piece_by_piece(engine):
    ids = engine.encode(PROMPT)
    free = engine.complete(ids, GREEDY).text
    stop = free[len(free) // 2 : len(free) // 2 + 4]
    decoding = Decoding(None, (stop,), 16, 0.0, 1.0, None)
    *pieces, last = list(engine.stream(ids, decoding))
    assert all(isinstance(p, str) for p in pieces) and isinstance(last, Completion)
    whole = engine.complete(ids, decoding)
    assert "".join(pieces) + last.text == whole.text and len(pieces) > 1
    assert (last.prompt_tokens, last.new_tokens, last.stopped) == (whole.prompt_tokens, whole.new_tokens, True)


def test_a_prompt_past_the_context_is_refused_before_prefill(tmp_path, tiny_llama):
    from helpers import with_context

    small = with_context(tiny_llama, tmp_path / "small", 64)
    engine = DecodeEngine(load_causal_lm(str(small)), load_tokenizer(str(small)), max_batch_size=1)
    assert engine.context_length == 64
    with pytest.raises(ContextLimitError, match="past the model's context of 64 positions"):
        engine.encode("word " * 80)
    with pytest.raises(ContextLimitError, match="a step may write 60 more"):
        engine.encode(PROMPT, max_new_tokens=60)
    assert engine.prefix_cache.prompt_tokens == 0


def test_paths_are_chosen_by_device_and_decode(loaded):
    cpu = DecodeEngine(*loaded)
    assert (cpu.batching, cpu.reuses_prefix, type(cpu.batcher).__name__) == ("continuous", True, "ContinuousBatcher")
    static = DecodeEngine(*loaded, decode="static", prefix_cache=False)
    assert (static.batching, static.prefix_cache, type(static.batcher).__name__) == ("padded", None, "Batcher")
    alone = DecodeEngine(*loaded, max_batch_size=1)
    assert alone.batcher is None
    cpu.close()


def test_concurrent_calls_share_a_batch_and_answer_as_alone(engine, loaded):
    batched = DecodeEngine(*loaded, batching="continuous")
    prompts = [
        engine.encode(f"<s>[INST] Question: {q} [/INST]") for q in ("Where is Lucca?", "Who was Penn?", "When was it?")
    ]
    expected = [engine.complete(ids, GREEDY) for ids in prompts]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda ids: batched.complete(ids, GREEDY), prompts))
    assert got == expected and max(batched.batcher.batches) > 1
    batched.close()
    with pytest.raises(RuntimeError, match="closed"):
        batched.complete(prompts[0], GREEDY)


def test_adapters_are_checked_by_name(loaded):
    engine = DecodeEngine(*loaded, max_batch_size=1)
    with pytest.raises(ValueError, match="asked for, but the model has no adapters"):
        engine.check_adapter("a")
    merged = DecodeEngine(*loaded, adapters=["a"], merged="a", max_batch_size=1)
    with pytest.raises(ValueError, match="'a' is merged into the weights"):
        merged.check_adapter(None)
    with pytest.raises(ValueError, match=r"unknown adapter 'b': loaded are \['a'\]"):
        merged.check_adapter("b")


def test_cut_at_stop_strings_takes_the_first_of_any():
    assert cut_at_stop_strings("a Obs b Act c", ["Act", "Obs"]) == ("a ", True)
    assert cut_at_stop_strings("abc", None) == ("abc", False)
