"""Is one agent better than another on the same questions? The paired bootstrap of the F1
difference: per question, each run's F1 (the mean over its repeats); then the mean difference
over questions and a 95% interval from resampling the questions with replacement. An interval
above 0 says the second run is better on questions like these, not just on these."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from araft_lc.react.trajectory import TrajectoryRecord

__all__ = ["PairedDifference", "per_question_f1", "paired_bootstrap"]


@dataclass(frozen=True)
class PairedDifference:
    """``mean`` = F1(b) - F1(a) in points, over ``n`` questions both runs answered, with its 95% interval."""

    mean: float
    low: float
    high: float
    n: int


def per_question_f1(records: Iterable[TrajectoryRecord]) -> dict[str, float]:
    """Question id -> F1 in points, the mean over the question's repeats."""
    scores: dict[str, list[float]] = defaultdict(list)
    for r in records:
        scores[r.question_id].append(100.0 * r.scores.get("f1", 0.0))
    return {q: sum(v) / len(v) for q, v in scores.items()}


def paired_bootstrap(
    a: dict[str, float], b: dict[str, float], *, resamples: int = 10_000, seed: int = 0
) -> PairedDifference:
    """The paired bootstrap of ``b - a`` over the questions both hold.

    Raises:
        ValueError: the runs share no question.
    """
    import numpy as np

    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError("the two runs share no question: compare runs of the same question sample")
    diff = np.array([b[q] - a[q] for q in shared])
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return PairedDifference(float(diff.mean()), float(low), float(high), len(shared))
