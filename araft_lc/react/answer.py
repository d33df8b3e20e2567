"""Answers compared as HotpotQA compares them: the official normalisation (``hotpot_evaluate_v1.py``:
lower case, no punctuation, no articles a/an/the, single spaces), which the evaluator scores with
and self-consistency votes with, and whether a text holds an answer (``supported_by``)."""

from __future__ import annotations

import re
import string

__all__ = ["normalize_answer", "is_yes_no", "supported_by"]

_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(c for c in text if c not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def is_yes_no(answer: str) -> bool:
    return normalize_answer(answer) in ("yes", "no")


def supported_by(answer: str, texts: list[str]) -> bool:
    """Whether ``answer`` (normalised) appears, as whole words, in one of ``texts`` (normalised)."""
    wanted = normalize_answer(answer)
    return bool(wanted) and any(f" {wanted} " in f" {normalize_answer(t)} " for t in texts)
