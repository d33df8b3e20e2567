"""A teacher the student can imitate: it knows the gold pages, but only searches with words the
student can see.

The oracle (``--teacher oracle``) searches the gold titles themselves, and a third of them are
in neither the question nor any observation: SFT on it teaches a 135M model to produce titles
out of nothing. This teacher (``--teacher visible``) picks, for the next gold page, a query that
is a span of the question or of an observation it already got, and that the same Wikipedia
backend the agent uses resolves to that page (it tries the spans first, privately). A whole
visible title is searched as it is; otherwise the longest name (capitalised words) that finds the
page, else the shortest phrase that does. It answers once every gold page was read or, for a
bridge question, once a gold page was read that names the answer. When the most natural name
(the longest one sharing the title's words) finds a page that is no gold page, the trajectory
shows that miss first and then the refined query, at most once a run, so the student also sees
a search fail and a recovery. A gold page no visible span reaches ends the run with a give-up,
which ``araft generate`` then rejects.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Iterable, Optional

from pydantic import PrivateAttr

from araft_lc.react.parser import format_action
from araft_lc.wiki.index import normalize_title
from evals.hotpotqa import Question
from evals.oracle import GIVE_UP, OracleChatModel, search_order

__all__ = ["VisibleTeacherChatModel", "visible_spans", "is_visible", "imitability"]

_OBSERVATION = re.compile(r"^Observation: (.*)$", re.MULTILINE)
_SEARCH = re.compile(r"^Action: \[action: Wikipedia, action_input: (.*)\]$", re.MULTILINE)
_WORD = re.compile(r"[\w'’.-]+", re.UNICODE)
MAX_SPAN_WORDS = 6
# Words too common to tie a span to a title ("The Beatles" shares "the" with every sentence).
_COMMON = {
    "the",
    "a",
    "an",
    "of",
    "and",
    "in",
    "on",
    "at",
    "to",
    "for",
    "by",
    "with",
    "from",
    "de",
    "la",
    "le",
    "el",
    "du",
    "des",
    "s",
    "is",
    "was",
    "or",
}


_CONNECTORS = {"of", "the", "de", "and", "du", "la", "le", "von", "van", "der", "for", "in", "on", "y", "da", "di"}


def _entity_like(span: str) -> bool:
    """A name: every word capitalised (or a number), lower-case connectors only inside."""
    words = span.split()
    return all(
        w[0].isupper() or w[0].isdigit() or (0 < i < len(words) - 1 and w in _CONNECTORS) for i, w in enumerate(words)
    )


def is_visible(query: str, texts: Iterable[str]) -> bool:
    """Whether ``query`` is a span of one of ``texts`` (case-, accent- and punctuation-insensitive)."""
    q = f" {normalize_title(query)} "
    return q.strip() != "" and any(q in f" {normalize_title(t)} " for t in texts)


def visible_spans(texts: Iterable[str], words_of: set[str]) -> list[str]:
    """Spans of up to ``MAX_SPAN_WORDS`` words of ``texts`` that share a word with ``words_of``
    (normalised), unique, in reading order."""
    spans: dict[str, None] = {}
    for text in texts:
        tokens = [w.strip(".,;:'’") for w in _WORD.findall(text)]
        tokens = [w for w in tokens if w]
        for i in range(len(tokens)):
            for n in range(1, MAX_SPAN_WORDS + 1):
                if i + n > len(tokens):
                    break
                span = " ".join(tokens[i : i + n])
                if set(normalize_title(span).split()) & words_of:
                    spans.setdefault(span, None)
    return list(spans)


class VisibleTeacherChatModel(OracleChatModel):
    """Answers ``questions`` (looked up by question text) through ``backend``'s pages, searching
    only with visible words; any other question gets a give-up. The oracle's chat surface (how
    it reads the question and the run from the prompt), with its own ``next_step``."""

    show_misses: bool = True
    spec: ClassVar[str] = "visible"

    _backend: Any = PrivateAttr(default=None)
    _memo: dict[str, Optional[str]] = PrivateAttr(default_factory=dict)

    def __init__(self, questions: Iterable[Question], backend: Any, **kwargs: Any):
        super().__init__(questions, **kwargs)
        self._backend = backend

    def _found(self, query: str) -> Optional[str]:
        """The title the backend's page for ``query`` has (None when it finds none)."""
        if query not in self._memo:
            try:
                self._memo[query] = self._backend.lookup(query).title
            except Exception:
                self._memo[query] = None
        return self._memo[query]

    def _query_for(
        self, q: Question, title: str, texts: list[str], tried: set[str], may_miss: bool
    ) -> tuple[Optional[str], Optional[str]]:
        """(a natural query that finds a page that is no gold page, or None; a visible query
        that finds ``title``, or None)."""
        if is_visible(title, texts) and self._found(title) == title:
            return None, title
        title_words = set(normalize_title(title).split()) - _COMMON
        spans = [s for s in visible_spans(texts, title_words) if s not in tried]
        hits = [s for s in spans if self._found(s) == title]
        if not hits:
            return None, None
        # A name as whole as it is written (the longest name that finds the page), else the
        # shortest phrase that does.
        hit = min(
            hits,
            key=lambda s: (
                (0, -len(s.split()), spans.index(s)) if _entity_like(s) else (1, len(s.split()), spans.index(s))
            ),
        )
        names = [s for s in spans if _entity_like(s)]
        if not may_miss or not names:
            return None, hit
        natural = max(names, key=lambda s: (len(set(normalize_title(s).split()) & title_words), len(s.split())))
        found = self._found(natural)
        gold = set(q.supporting_titles)
        return (natural if natural != hit and found is not None and found not in gold else None), hit

    def next_step(self, question: str, scratchpad: str) -> str:
        q = self._by_text.get(" ".join(question.split()))
        if q is None or not q.supporting_titles:
            return f"Thought: I cannot answer this.\nAction: {format_action('Answer', GIVE_UP)}"
        observations = _OBSERVATION.findall(scratchpad)
        searched = _SEARCH.findall(scratchpad)
        texts = [question, *observations]
        remaining = [
            t for t in search_order(q, self.reverse_comparison) if not any(q.shows(t, o) for o in observations)
        ]
        # Done when every gold page was read or, for a bridge question, when a gold page read
        # names the answer (a comparison's answer is one of the names it compares: not evidence).
        answer_seen = (
            q.type != "comparison"
            and len(remaining) < len(q.supporting_titles)
            and is_visible(q.answer, observations)
            and not is_visible(q.answer, [question])
        )
        if not remaining or answer_seen:
            return (
                f"Thought: {self.quote(q, observations[-1], searched[-1], None)} So the answer is {q.answer}.\n"
                f"Action: {format_action('Answer', q.answer)}"
            )
        misses = [s for s in searched if self._found(s) not in q.supporting_titles]
        for title in remaining:
            miss, hit = self._query_for(q, title, texts, set(searched), self.show_misses and not misses)
            if hit is None:
                continue
            query = miss or hit
            if not observations:
                thought = f"I need to find out about {query} first."
            elif searched and searched[-1] in misses:
                thought = f"That was not the page I need. I will search {query} instead."
            else:
                thought = f"{self.quote(q, observations[-1], searched[-1], query)} Now I need to look up {query}."
            return f"Thought: {thought}\nAction: {format_action('Wikipedia', query)}"
        return f"Thought: I cannot find the page I need with what I know.\nAction: {format_action('Answer', GIVE_UP)}"


def imitability(records: Iterable[Any]) -> dict[str, Any]:
    """How much of a set of trajectories a student could infer: the share of searches whose
    query is a span of what the run had seen (the question, earlier observations), and the
    distribution of run lengths."""
    searches = visible = 0
    steps: dict[int, int] = {}
    for record in records:
        seen = [record.question]
        for step in record.steps:
            if step.action == "Wikipedia":
                searches += 1
                visible += is_visible(step.action_input or "", seen)
            seen.append(step.observation or "")
        steps[len(record.steps)] = steps.get(len(record.steps), 0) + 1
    return {
        "searches": searches,
        "inferable": visible / searches if searches else 0.0,
        "steps": dict(sorted(steps.items())),
    }
