"""BatchKV on the tiny random Llama: rows that join (longer or shorter than the batch) and leave
between steps get the logits they would get alone, whether the buffers have room to spare or must
be copied into bigger ones at every turn; a removed row's cache is its own."""

import pytest
import torch

from araft_lc.runtime.torch.batch_kv import BatchKV

# (prompt length, step it joins at, steps it decodes): longer and shorter rows joining a running batch
ROWS = [(9, 0, 6), (17, 2, 5), (5, 3, 6), (30, 4, 3), (12, 8, 4)]


@pytest.fixture(scope="module")
def model(tiny_llama):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval()


def prompt(model, n: int, seed: int) -> list[int]:
    return torch.randint(5, model.config.vocab_size, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def prefill(model, ids: list[int]):
    from transformers import DynamicCache

    past = DynamicCache(config=model.config)
    out = model(input_ids=torch.tensor([ids]), cache=past, use_cache=True)
    return past, out.logits[0, -1]


def alone(model, ids: list[int], steps: int) -> tuple[list[torch.Tensor], list[int]]:
    """Each step's logits and the greedy tokens of ``ids`` decoded at batch 1."""
    past, logits = prefill(model, ids)
    tokens, seen = [int(logits.argmax())], []
    for _ in range(steps):
        out = model(input_ids=torch.tensor([[tokens[-1]]]), cache=past, use_cache=True)
        seen.append(out.logits[0, -1])
        tokens.append(int(out.logits[0, -1].argmax()))
    return seen, tokens


@pytest.mark.parametrize("max_rows,room", [(8, 256), (1, 1)], ids=["room to spare", "copied at every turn"])
def test_rows_joining_and_leaving_get_their_logits_alone(model, max_rows, room):
    """Only the forwards run in inference mode, as in the engine: BatchKV writes its buffers in place
    from outside it too (a removal outside it once raised, and the engine lost the row)."""
    prompts = [prompt(model, n, seed) for seed, (n, _, _) in enumerate(ROWS)]
    with torch.inference_mode():
        expected = [alone(model, ids, steps) for ids, (_, _, steps) in zip(prompts, ROWS, strict=True)]
    kv, active = None, []  # active: [row index, tokens so far, logits so far]
    for t in range(max(start + steps for _, start, steps in ROWS)):
        for r, (_, start, _) in enumerate(ROWS):
            if start == t:
                with torch.inference_mode():
                    past, logits = prefill(model, prompts[r])
                if kv is None:
                    kv = BatchKV(past, max_rows, room)
                else:
                    kv.add(past)
                active.append([r, [int(logits.argmax())], []])
        with torch.inference_mode():  # the step, as the engine runs it
            mask, positions = kv.next_mask_and_positions()
            out = model(
                input_ids=torch.tensor([[row[1][-1]] for row in active]),
                attention_mask=mask,
                position_ids=positions,
                cache=kv.cache,
                use_cache=True,
            )
        kv.advanced(mask)
        for row, logits in zip(active, out.logits[:, -1], strict=True):
            row[2].append(logits.clone())
            row[1].append(int(logits.argmax()))
        for i in reversed(range(len(active))):
            r, tokens, seen = active[i]
            if len(seen) == ROWS[r][2]:
                active.pop(i)
                own = kv.remove(i)
                assert own.get_seq_length() == len(prompts[r]) + len(tokens) - 1  # all but the last token
                assert tokens == expected[r][1]
                for got, want in zip(seen, expected[r][0], strict=True):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        if not active:
            kv = None
    assert kv is None


def test_a_removed_rows_cache_is_its_own(model):
    ids = [prompt(model, 7, 0), prompt(model, 11, 1)]
    with torch.inference_mode():
        pasts = [prefill(model, i)[0] for i in ids]
        kv = BatchKV(pasts[0], max_rows=2, room=4)
        kv.add(pasts[1])
        assert len(kv) == 2 and kv.mask.tolist()[0] == [0] * 4 + [1] * 7
        own = kv.remove(0)
        torch.testing.assert_close(own.layers[0].keys, pasts[0].layers[0].keys, rtol=0, atol=0)
        kept = own.layers[0].keys.clone()
        for _ in range(6):  # later steps write into the buffers, never into the row taken out
            mask, positions = kv.next_mask_and_positions()
            model(
                input_ids=torch.tensor([[3]]),
                attention_mask=mask,
                position_ids=positions,
                cache=kv.cache,
                use_cache=True,
            )
            kv.advanced(mask)
        assert torch.equal(own.layers[0].keys, kept)
        assert kv.mask.shape == (1, 11 + 6) and kv.cache.get_seq_length() == 17
