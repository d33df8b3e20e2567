"""Static-cache decoding and merged LoRA on a tiny random Llama: the same greedy tokens as the
dynamic path, through AraftChatModel and through the agent, in a few fixed cache shapes."""

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from araft_lc.agent.graph import create_araft_agent
from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.runtime.torch.static_decode import StaticDecoder, default_buckets, pick_bucket

MESSAGES = [SystemMessage("Answer with a Thought and an Action."), HumanMessage("Question: Where is Lucca?")]
QUESTIONS = ("Where is Lucca?", "Who founded Philadelphia?")
LENGTHS = [128, 256, 512, 1024]


def test_buckets_are_powers_of_two_up_to_the_context():
    assert default_buckets(4096) == [512, 1024, 2048, 4096]
    assert default_buckets(3000) == [512, 1024, 2048, 3000]
    assert pick_bucket([512, 1024], 512) == 512 and pick_bucket([1024, 512], 513) == 1024
    assert pick_bucket([512, 1024], 1025) is None


def run_agent(model, wiki):
    agent = create_araft_agent(model, [wiki], prompt="zeroshot_turns", max_steps=4)
    return [[s["raw"] for s in agent.invoke({"question": q})["steps"]] for q in QUESTIONS]


@pytest.fixture(scope="module")
def dynamic_steps(tiny_llama, adapters, mini_index):
    from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool

    wiki = WikipediaTool(backend=LocalWikipedia(mini_index))
    model = AraftChatModel(
        model_id=str(tiny_llama), max_new_tokens=24, adapters={"a": str(adapters["a"])}, adapter="a", prefix_cache=False
    )
    return run_agent(model, wiki), model.invoke(MESSAGES).content


@pytest.mark.parametrize("reuse", [True, False])
def test_static_agent_runs_token_for_token_as_dynamic(tiny_llama, adapters, wiki, dynamic_steps, reuse):
    # growing prompts cross buckets (128 to 512 tokens here); each bucket's cache is made once
    model = AraftChatModel(
        model_id=str(tiny_llama),
        max_new_tokens=24,
        adapters={"a": str(adapters["a"])},
        adapter="a",
        decode="static",
        static_cache_lengths=LENGTHS,
        prefix_cache=reuse,
    )
    steps = run_agent(model, wiki)
    assert steps == dynamic_steps[0]
    assert model.invoke(MESSAGES).content == dynamic_steps[1]
    assert "".join(c.content for c in model.stream(MESSAGES)) == dynamic_steps[1]
    static = model.engine.static
    # one cache per bucket the prompts reached, each allocated once and reused in place
    shapes = static.cache_shapes
    assert 1 <= len(shapes) <= len(LENGTHS) and all(shape[2] == bucket for bucket, shape in shapes.items())
    assert len(shapes) > 1
    if reuse:  # later steps read only their new tail, copied once into a larger bucket
        assert static.reused_tokens > static.prompt_tokens / 2
    else:
        assert static.reused_tokens == 0


def test_no_recompile_per_step(tiny_llama, wiki, dynamic_steps):
    # dynamo's own count of the graphs it compiled: one per cache shape at most, however many
    # steps and prompt lengths (the eager backend traces and guards as inductor does, in seconds)
    import torch
    from torch._dynamo.utils import counters
    from transformers import CompileConfig

    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=24, decode="static", prefix_cache=True)
    dynamic = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=24, prefix_cache=False)
    model.engine.static = StaticDecoder(
        model.engine.model, LENGTHS, compile=True, compile_config=CompileConfig(backend="eager", mode=None)
    )
    torch._dynamo.reset()
    counters.clear()
    steps = run_agent(model, wiki)
    assert steps == run_agent(dynamic, wiki)
    graphs = counters["stats"]["unique_graphs"]
    assert sum(len(s) for s in steps) >= 4 and 1 <= graphs <= len(model.engine.static.cache_shapes)


def test_a_call_longer_than_every_bucket_decodes_dynamically(tiny_llama, chat_dynamic):
    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=24, decode="static", static_cache_lengths=[16])
    assert model.invoke(MESSAGES).content == chat_dynamic.invoke(MESSAGES).content
    assert model.engine.static.cache_shapes == {}


@pytest.fixture(scope="module")
def chat_dynamic(tiny_llama):
    return AraftChatModel(model_id=str(tiny_llama), max_new_tokens=24)


def test_warm_up_runs_each_bucket_once(tiny_llama, chat_dynamic):
    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=24, decode="static", static_cache_lengths=[64, 128])
    seconds = model.warm_up()
    assert set(seconds) == {64, 128} and all(s >= 0 for s in seconds.values())
    assert set(model.engine.static.cache_shapes) == {64, 128}
    assert model.invoke(MESSAGES).content == chat_dynamic.invoke(MESSAGES).content  # warm-up left no trace
    with pytest.raises(ValueError, match='decode="static"'):
        chat_dynamic.warm_up()


def test_merged_lora_gives_the_unmerged_tokens(tiny_llama, adapters, wiki, dynamic_steps):
    from araft_lc.runtime.torch.lora_merge import merged_adapters

    model = AraftChatModel(
        model_id=str(tiny_llama),
        max_new_tokens=24,
        adapters={"a": str(adapters["a"])},
        adapter="a",
        merge_lora=True,
        prefix_cache=False,
    )
    assert run_agent(model, wiki) == dynamic_steps[0]
    assert merged_adapters(model.engine.model) == {"a"}
    static = AraftChatModel(
        model_id=str(tiny_llama),
        max_new_tokens=24,
        adapters={"a": str(adapters["a"])},
        adapter="a",
        merge_lora=True,
        decode="static",
        static_cache_lengths=LENGTHS,
    )
    assert static.invoke(MESSAGES).content == dynamic_steps[1]
    with pytest.raises(ValueError, match="merged into the weights"):
        model.bind(adapter=None).invoke(MESSAGES)


@pytest.mark.parametrize(
    "fields",
    [
        {"adapters": {}, "adapter": None},
        {"adapters": {"a": "A", "b": "B"}, "adapter": "a"},
        {"adapters": {"a": "A"}, "adapter": None},
    ],
)
def test_merge_lora_needs_one_active_adapter(tiny_llama, fields):
    with pytest.raises(ValueError, match="merge_lora needs exactly one adapter"):
        AraftChatModel(model_id=str(tiny_llama), merge_lora=True, **fields)
