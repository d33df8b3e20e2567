"""One call's decoding: its settings (``Decoding``), its output (``Completion``), what transformers'
``generate()`` takes for it (the generation config, stop strings, a deadline, a seed), and the
same sampling, token by token, for a row of the continuous batch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

__all__ = [
    "Completion",
    "ContextLimitError",
    "Decoding",
    "cut_at_stop_strings",
    "deadline_criteria",
    "draw_token",
    "draw_token_numpy",
    "numpy_generator",
    "generation_kwargs",
    "row_generator",
    "seed_sampling",
    "TOP_K",
]


@dataclass(frozen=True)
class Decoding:
    """One call's decoding settings; calls batch together only when these are equal."""

    adapter: Optional[str]
    stop: tuple[str, ...]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: Optional[int]


@dataclass(frozen=True)
class Completion:
    """One call's output: its text up to the first stop string, and what it cost."""

    text: str
    prompt_tokens: int
    new_tokens: int
    stopped: bool  # a stop string ended it


class ContextLimitError(ValueError):
    """A prompt that, with the tokens the call may write, does not fit the model's context; raised
    before any prefill (a prefill's memory grows with the square of its length)."""


def cut_at_stop_strings(text: str, stop: Optional[Sequence[str]]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cut = len(text)
    for s in stop or ():
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut], cut < len(text)


def deadline_criteria(deadlines: Sequence[Optional[float]]) -> dict[str, Any]:
    """``generate()`` arguments that stop each row at its deadline (``time.time()``), if any."""
    if all(d is None for d in deadlines):
        return {}
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Deadline(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            now = time.time()
            return torch.tensor([d is not None and now >= d for d in deadlines], device=input_ids.device)

    return {"stopping_criteria": StoppingCriteriaList([Deadline()])}


def generation_kwargs(
    decoding: Decoding, tokenizer: Any, cache_args: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    """generate() arguments for ``decoding``, with a row's cache arguments (its generation
    options go into the config: transformers wants them there, not beside it)."""
    from transformers import GenerationConfig

    extra = dict(cache_args or {})
    options = {k: extra.pop(k) for k in ("compile_config", "disable_compile", "min_new_tokens") if k in extra}
    sample = decoding.temperature > 0
    config = GenerationConfig(
        max_new_tokens=decoding.max_new_tokens,
        do_sample=sample,
        temperature=decoding.temperature if sample else None,
        top_p=decoding.top_p if sample else None,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        stop_strings=list(decoding.stop) if decoding.stop else None,
        return_dict_in_generate=True,
        **options,
    )
    return {"generation_config": config, "tokenizer": tokenizer, **extra}


def seed_sampling(decoding: Decoding) -> None:
    """Seed torch for a sampled call that names a seed, so that the seed reproduces it."""
    if decoding.temperature > 0 and decoding.seed is not None:
        import torch

        torch.manual_seed(decoding.seed)


TOP_K = 50  # transformers' GenerationConfig default, which ``generate`` applies when it samples


def row_generator(decoding: Decoding, device: Any) -> Any:
    """A sampled row's own generator, seeded by its call's seed (else at random); None for greedy."""
    if decoding.temperature <= 0:
        return None
    import torch

    generator = torch.Generator(device=device)
    if decoding.seed is not None:
        generator.manual_seed(decoding.seed)
    else:
        generator.seed()
    return generator


def draw_token(logits: Any, decoding: Decoding, generator: Any) -> int:
    """The next token from one row's logits: greedy, or sampled as ``generate`` samples (the
    temperature, top-k and top-p warpers in its order, then one multinomial draw), so that a
    seeded row draws what the same call alone draws."""
    import torch

    if generator is None:
        return int(logits.argmax())
    scores = logits.float() / decoding.temperature
    kth = torch.topk(scores, min(TOP_K, scores.shape[-1])).values[-1]
    scores = scores.masked_fill(scores < kth, float("-inf"))
    if decoding.top_p < 1.0:
        ordered, order = torch.sort(scores)
        drop = ordered.softmax(-1).cumsum(-1) <= 1 - decoding.top_p
        drop[-1] = False
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return int(torch.multinomial(scores.softmax(-1), 1, generator=generator))


def numpy_generator(decoding: Decoding) -> Any:
    """A sampled row's own numpy generator, seeded by its call's seed (else at random); None for
    greedy: the llama.cpp backend's, which needs no torch."""
    if decoding.temperature <= 0:
        return None
    import numpy as np

    return np.random.default_rng(decoding.seed)


def draw_token_numpy(logits: Any, decoding: Decoding, generator: Any) -> int:
    """``draw_token`` in numpy: the same warpers in the same order (temperature, top-k, top-p),
    then one draw from ``generator`` (``numpy_generator``). The distribution is the same as
    torch's; the draws are not, since the generators differ (a seed reproduces within a backend)."""
    import numpy as np

    if generator is None:
        return int(logits.argmax())
    scores = logits.astype(np.float64) / decoding.temperature
    k = min(TOP_K, scores.shape[-1])
    kth = np.partition(scores, -k)[-k]
    scores[scores < kth] = -np.inf
    if decoding.top_p < 1.0:
        order = np.argsort(scores, kind="stable")
        ordered = np.exp(scores[order] - scores[order[-1]])
        drop = np.cumsum(ordered / ordered.sum()) <= 1 - decoding.top_p
        drop[-1] = False
        scores[order[drop]] = -np.inf
    weights = np.exp(scores - scores.max())
    return int(generator.choice(scores.shape[-1], p=weights / weights.sum()))
