"""Continuous batching on the tiny random Llama: every row answers as it would alone, whenever it
joins, whatever its own stop strings, token cap, deadline or adapter; a failing row fails alone."""

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.runtime.decoding import Decoding

SYSTEM = SystemMessage("Answer with a Thought and an Action.")
PROMPTS = [
    [SYSTEM, HumanMessage(f"Question: {q}")]
    for q in (
        "Where is Lucca?",
        "Who founded Philadelphia?",
        "When was it?",
        "Which magazine was started first, Arthur's or First for Women?",
        "Is Lucca in Tuscany?",
    )
]


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "araft-continuous-batcher"]


@pytest.fixture(scope="module")
def alone(tiny_llama, adapters):
    return AraftChatModel(
        model_id=str(tiny_llama), max_new_tokens=24, max_batch_size=1, adapters={k: str(v) for k, v in adapters.items()}
    )


def continuous_model(tiny_llama, adapters) -> AraftChatModel:
    return AraftChatModel(
        model_id=str(tiny_llama),
        max_new_tokens=24,
        batching="continuous",
        adapters={k: str(v) for k, v in adapters.items()},
    )


@pytest.fixture(scope="module")
def continuous(tiny_llama, adapters):
    return continuous_model(tiny_llama, adapters)


@pytest.fixture
def own(tiny_llama, adapters):
    """A continuous model of the test's own, closed after it: closing answers every call still
    waiting, so a call the engine lost fails its test instead of hanging the process at exit."""
    model = continuous_model(tiny_llama, adapters)
    yield model
    model.engine.batcher.close()


def wait_for_steps(engine, n: int, stall_s: float = 120.0) -> None:
    """Until the engine has run ``n`` decode steps in all (a condition, not a time limit); an
    engine that stalls for ``stall_s`` fails the test instead of hanging it."""
    deadline = time.monotonic() + stall_s
    while sum(engine.batches.values()) < n:
        assert time.monotonic() < deadline, f"the engine stalled before {n} decode steps"
        time.sleep(0.005)


def test_rows_that_join_mid_flight_answer_as_alone(alone, continuous):
    expected = [alone.invoke(p, max_tokens=40).content for p in PROMPTS]
    engine = continuous.engine.batcher
    steps_before = sum(engine.batches.values())
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        first = [pool.submit(continuous.invoke, p, max_tokens=40) for p in PROMPTS[:2]]
        wait_for_steps(engine, steps_before + 3)  # the first rows are decoding; the rest join them
        later = [pool.submit(continuous.invoke, p, max_tokens=40) for p in PROMPTS[2:]]
        got = [f.result().content for f in first + later]
    assert got == expected
    assert max(engine.batches) >= 3  # late rows decoded beside the first ones


def test_each_row_keeps_its_own_stop_cap_and_deadline(alone, continuous):
    free = alone.invoke(PROMPTS[0]).content
    stop = free[len(free) // 2 : len(free) // 2 + 5]
    calls = [
        (PROMPTS[0], {"stop": [stop]}),
        (PROMPTS[1], {"max_tokens": 7}),
        (PROMPTS[2], {}),
        (PROMPTS[3], {"deadline": time.time() - 1}),
        (PROMPTS[4], {"stop": ["Obs", "e"]}),
    ]
    expected = [alone.invoke(p, **kw) for p, kw in calls]
    with ThreadPoolExecutor(len(calls)) as pool:
        got = list(pool.map(lambda c: continuous.invoke(c[0], **c[1]), calls))
    assert [m.content for m in got] == [m.content for m in expected]
    assert [m.usage_metadata for m in got] == [m.usage_metadata for m in expected]
    assert [m.response_metadata["stopped"] for m in got] == [m.response_metadata["stopped"] for m in expected]
    assert got[0].response_metadata["stopped"] and got[1].usage_metadata["output_tokens"] == 7
    assert got[3].usage_metadata["output_tokens"] == 1  # past its deadline: one token, as generate() gives


def test_rows_of_different_adapters_take_turns_and_answer_as_alone(alone, continuous):
    calls = [(p, adapter) for p in PROMPTS[:3] for adapter in ("a", "b", None)]
    expected = [alone.invoke(p, adapter=adapter).content for p, adapter in calls]
    with ThreadPoolExecutor(len(calls)) as pool:
        got = list(pool.map(lambda c: continuous.invoke(c[0], adapter=c[1]).content, calls))
    assert got == expected
    assert len(set(expected)) > 3  # the adapters really change the output


def test_a_failing_row_fails_alone(alone, continuous):
    engine = continuous.engine.batcher
    key = Decoding(None, (), 24, 0.0, 1.0, None)  # the fixture's: greedy, 24 tokens
    bad = continuous.get_token_ids(continuous.prompt_text(PROMPTS[0])) + [
        continuous.tokenizer.vocab_size + 1000
    ]  # no such embedding
    expected = [alone.invoke(p).content for p in PROMPTS[:3]]
    with ThreadPoolExecutor(4) as pool:
        good = [pool.submit(continuous.invoke, p) for p in PROMPTS[:3]]
        failing = pool.submit(engine.submit, bad, key)
        with pytest.raises(IndexError):
            failing.result()
        assert [f.result().content for f in good] == expected
    assert continuous.invoke(PROMPTS[0]).content == expected[0]  # and the engine goes on


def test_agent_runs_in_a_continuous_batch_match_runs_one_at_a_time(tiny_llama, mini_index):
    from araft_lc.agent.graph import create_araft_agent
    from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool

    tool = WikipediaTool(backend=LocalWikipedia(mini_index))
    questions = [{"question": q} for q in ("Where is Lucca?", "Who founded Philadelphia?", "When was it?")]
    steps = {}
    for batching, size in (("padded", 1), ("continuous", 8)):
        model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=12, max_batch_size=size, batching=batching)
        agent = create_araft_agent(model, [tool], prompt="zeroshot_turns", max_steps=3)
        steps[batching] = [[s["raw"] for s in r["steps"]] for r in agent.batch(questions, {"max_concurrency": 3})]
        if batching == "continuous":
            assert (
                model.engine.prefix_cache.reused_tokens > model.engine.prefix_cache.prompt_tokens / 2
            )  # later steps reuse their run
    assert steps["continuous"] == steps["padded"]


def test_sampled_rows_decode_together_and_draw_as_generate_draws(alone, continuous):
    # each row its own seed (one with top-p too), beside greedy rows: every output is the one
    # transformers' own seeded generate() samples for that call alone
    calls = [
        (PROMPTS[0], {"temperature": 0.9, "seed": 7}),
        (PROMPTS[0], {"temperature": 0.9, "seed": 8}),
        (PROMPTS[1], {"temperature": 1.3, "seed": 7, "top_p": 0.8}),
        (PROMPTS[2], {}),
        (PROMPTS[3], {}),
    ]
    expected = [alone.invoke(p, **kw).content for p, kw in calls]
    engine = continuous.engine.batcher
    before = engine.batches.copy()
    with ThreadPoolExecutor(len(calls)) as pool:
        got = list(pool.map(lambda c: continuous.invoke(c[0], **c[1]).content, calls))
    assert got == expected
    assert expected[0] != expected[1]  # the seeds really differ
    assert max(engine.batches - before) >= 3  # decoded side by side


def test_the_worker_ends_with_its_model_and_on_close(tiny_llama):
    before = len(worker_threads())
    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=4, batching="continuous")
    model.batch(PROMPTS[:2])
    assert len(worker_threads()) == before + 1
    thread = model.engine.batcher._thread
    del model
    gc.collect()
    thread.join(timeout=60)
    assert not thread.is_alive()

    model = AraftChatModel(model_id=str(tiny_llama), max_new_tokens=4, batching="continuous")
    model.engine.batcher.close()
    assert not model.engine.batcher._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        model.invoke(PROMPTS[0])
    assert len(worker_threads()) == before


@pytest.mark.parametrize("stop", [("Observation:",), ("Obs", "e"), ("\n",)])
def test_stop_strings_are_asked_only_when_they_can_end_and_say_what_the_criteria_says(tiny_llama, stop):
    import torch
    from transformers import AutoTokenizer, StopStringCriteria

    from araft_lc.runtime.batch_loop import StopStrings

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    criteria = StopStringCriteria(tokenizer, list(stop))
    check = StopStrings.of(criteria)
    vocab, fired = len(tokenizer), 0
    for text in (
        "Thought: look it up.\nAction: search[Lucca]\nObservation",
        "Obs",
        "Observation:",
        "Lucca is in Tuscany",
    ):
        context = tokenizer(text, add_special_tokens=False).input_ids
        rows = torch.tensor([context + [t] for t in range(vocab + 3)])  # and ids past the vocabulary
        expected = criteria(rows, None).tolist()
        assert [check.ended(r) for r in rows.tolist()] == expected
        fired += sum(expected)
    assert fired > 0
    assert 0 < len(check.enders) < vocab / 2  # most tokens end no stop string: no check after them


def test_a_pool_of_runs_drains(own):
    """As `araft eval --concurrency 8` drives it: 8 threads, each sending a run's next call as soon
    as its last one returns, over more runs than threads (an in-place batch cache once lost calls
    here, at the pool's tail, and the evaluation hung)."""
    import random
    from concurrent.futures import wait

    from langchain_core.messages import AIMessage

    def run(k: int) -> int:
        rng = random.Random(k)
        messages = [SYSTEM, HumanMessage(f"Question: {k} " + "word " * rng.randint(1, 60))]
        for _ in range(rng.randint(1, 5)):
            out = own.invoke(
                messages, max_tokens=rng.randint(1, 30), stop=["Obs", "\n\n"] if rng.random() < 0.5 else None
            )
            messages += [AIMessage(out.content), HumanMessage("Observation: " + "text " * rng.randint(1, 80))]
        return k

    pool = ThreadPoolExecutor(8)
    futures = [pool.submit(run, k) for k in range(60)]
    done, pending = wait(futures, timeout=600)  # a hang fails here, not a slow machine
    pool.shutdown(wait=not pending, cancel_futures=True)
    assert not pending, f"{len(pending)} of 60 runs never finished: the engine lost their calls"
    assert sorted(f.result() for f in done) == list(range(60))


def test_a_failed_removal_fails_its_rows_and_loses_none(own, monkeypatch):
    """Whatever fails in the batch's bookkeeping, every call gets an answer or an error: none waits forever."""
    from concurrent.futures import wait

    from araft_lc.runtime.torch.batch_kv import BatchKV

    remove, failures = BatchKV.remove, []

    def fails_once(self, i):
        if not failures:
            failures.append(i)
            raise MemoryError("no room to copy the row out")
        return remove(self, i)

    monkeypatch.setattr(BatchKV, "remove", fails_once)
    pool = ThreadPoolExecutor(len(PROMPTS))
    futures = [pool.submit(own.invoke, p, max_tokens=5 + 3 * k) for k, p in enumerate(PROMPTS)]
    done, pending = wait(futures, timeout=300)  # a lost call fails here, not a slow machine
    pool.shutdown(wait=not pending)
    assert not pending and failures
    errors = [f.exception() for f in done if f.exception() is not None]
    assert errors and all(isinstance(e, MemoryError) for e in errors)
    assert own.invoke(PROMPTS[0]).content  # and the engine goes on
