"""Answer metrics with HotpotQA's official normalisation (``araft_lc.react.answer``, which the
agent's self-consistency vote shares).

Follows the official ``hotpot_evaluate_v1.py``: lower-case, drop punctuation and the articles
a/an/the, collapse whitespace; F1 over tokens, except that ``yes``, ``no`` and ``noanswer`` must
match exactly (F1 0 when either side is one of them and they differ).
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from araft_lc.react.answer import normalize_answer

__all__ = ["normalize_answer", "exact_match", "f1_score", "score"]

_SPECIAL = {"yes", "no", "noanswer"}


def exact_match(prediction: Optional[str], gold: str) -> float:
    return float(normalize_answer(prediction or "") == normalize_answer(gold))


def f1_score(prediction: Optional[str], gold: str) -> float:
    pred, ref = normalize_answer(prediction or ""), normalize_answer(gold)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0
    common = Counter(pred.split()) & Counter(ref.split())
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred.split()), same / len(ref.split())
    return 2 * precision * recall / (precision + recall)


def score(prediction: Optional[str], gold: str) -> dict[str, float]:
    """``{"em": 0|1, "f1": 0..1}`` for one answer."""
    return {"em": exact_match(prediction, gold), "f1": f1_score(prediction, gold)}
