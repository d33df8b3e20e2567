"""The vote of self-consistency: K runs' answers, normalised as HotpotQA normalises them
(``araft_lc.react.answer``), one vote per run that answered. The rules:

- ``majority``: the answer with the most votes;
- ``grounded``: only the votes whose answer appears in that run's own observations count (yes and
  no always do); when none does, every vote counts.

A tie goes to the earliest run among those holding a tied answer (run 0, the greedy run, first);
with no answer at all, run 0's outcome stands."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal, Mapping, Optional, Sequence

from typing_extensions import TypedDict

from araft_lc.react.answer import is_yes_no, normalize_answer, supported_by

__all__ = ["VOTE_RULES", "Vote", "VoteRule", "vote", "vote_rule"]

VoteRule = Literal["majority", "grounded"]
VOTE_RULES: tuple[VoteRule, ...] = ("majority", "grounded")


def vote_rule(name: str) -> VoteRule:
    """``name`` (a setting's text) as the ``VoteRule`` it names.

    Raises:
        ValueError: an unknown rule.
    """
    for rule in VOTE_RULES:
        if rule == name:
            return rule
    raise ValueError(f"unknown vote rule {name!r}: use one of {', '.join(VOTE_RULES)}")


class Vote(TypedDict):
    """The vote: the rule, each normalised answer's votes, the winner, and the run it is taken from."""

    rule: str
    counts: dict[str, int]
    chosen: Optional[str]
    run: int


def vote(runs: Sequence[Mapping[str, Any]], rule: VoteRule = "majority") -> Vote:
    """Put ``runs`` (each with ``answer`` and ``steps``, the greedy run first) to a vote.

    Raises:
        ValueError: an unknown rule.
    """
    answered = [(i, r) for i, r in enumerate(runs) if r.get("answer") and normalize_answer(r["answer"])]
    voters = answered
    if rule == "grounded":
        voters = [
            (i, r)
            for i, r in answered
            if is_yes_no(r["answer"])
            or supported_by(r["answer"], [s.get("observation") or "" for s in r.get("steps") or []])
        ] or answered
    elif rule != "majority":
        raise ValueError(f"unknown vote rule {rule!r}: use one of {', '.join(VOTE_RULES)}")
    counts = Counter(normalize_answer(r["answer"]) for _, r in voters)
    if not counts:
        return Vote(rule=rule, counts={}, chosen=None, run=0)
    top = max(counts.values())
    winner = next(i for i, r in voters if counts[normalize_answer(r["answer"])] == top)
    return Vote(rule=rule, counts=dict(counts), chosen=normalize_answer(runs[winner]["answer"]), run=winner)
