"""The oracle teacher: a chat model that answers HotpotQA questions from their supporting facts.

It stands in for the 70B teacher so the whole pipeline runs offline. It goes through the same
graph, tools and recorder as a real teacher: it searches the gold titles (bridge: the title named
in the question first; comparison: both, in the question's order) and answers with the gold
answer, but only when every observation really is the gold page; otherwise it gives up, and its
trajectory fails honestly.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Iterable, Optional

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from araft_lc.react.parser import format_action
from araft_lc.wiki.index import normalize_title
from evals.hotpotqa import Question

__all__ = ["OracleChatModel", "GIVE_UP", "first_sentence", "evidence_sentence", "sentences", "search_order"]

GIVE_UP = "unknown"
_OBSERVATION = re.compile(r"^Observation: (.*)$", re.MULTILINE)
_ACTION = re.compile(r"^Action: ", re.MULTILINE)


# A sentence ends at . ! or ? (and any closing quote or bracket) before whitespace and a capital,
# a digit or an opening quote; a period that ends an abbreviation or an initial ends none.
_SENTENCE_END = re.compile(r"[.!?][\"'’”)\]]*(?=\s+[\"'‘“(\[]?[A-Z0-9])")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "no",
    "nos",
    "co",
    "corp",
    "inc",
    "ltd",
    "vs",
    "v",
    "c",
    "ca",
    "mt",
    "ft",
    "gen",
    "col",
    "lt",
    "capt",
    "sgt",
    "prof",
    "rev",
    "hon",
    "vol",
    "op",
    "pp",
    "fl",
    "approx",
    "est",
    "dept",
    "univ",
    "jan",
    "feb",
    "mar",
    "apr",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}


def _is_abbreviation(before: str) -> bool:
    """Whether the last word of ``before`` (the text before a period) is an initial ("E"), a
    dotted acronym ("U.S", "F.P") or a common abbreviation ("Jr", "No", "v")."""
    word = before.rsplit(None, 1)[-1].lstrip("\"'‘“([") if before.strip() else ""
    return (
        (len(word) == 1 and word.isalpha())
        or re.fullmatch(r"(?:\w\.)+\w", word) is not None
        or word.lower() in _ABBREVIATIONS
    )


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, not split at an abbreviation or an initial ("Bruce E. Wilson",
    "Hook and Ladder No. 4")."""
    out, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        if text[end.start()] == "." and _is_abbreviation(text[: end.start()]):
            continue
        out.append(text[start : end.end()].strip())
        start = end.end()
    return [s for s in (*out, text[start:].strip()) if s]


def _cut(sentence: str, limit: int) -> str:
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0] + " ..."


def _cut_around(sentence: str, name: str, limit: int) -> str:
    """``sentence`` cut to ``limit`` characters so that ``name`` stays in it: from its start when
    the name ends early enough, else the words before and after the name, marked where cut."""
    at = sentence.casefold().find(name.casefold())
    if len(sentence) <= limit or at < 0 or at + len(name) <= limit - 4:
        return _cut(sentence, limit)
    start = sentence.find(" ", max(0, at - limit // 2)) + 1 or at
    return "... " + _cut(sentence[start:], limit - 4)


def first_sentence(text: str, limit: int = 120) -> str:
    """The first sentence of ``text`` (``sentences``), cut to ``limit`` characters on a word boundary."""
    found = sentences(text)
    return _cut(found[0] if found else text, limit)


# words too common to tie a sentence to a question
_STOPWORDS = {
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "by",
    "with",
    "from",
    "and",
    "or",
    "as",
    "is",
    "was",
    "are",
    "were",
    "be",
    "been",
    "it",
    "its",
    "his",
    "her",
    "their",
    "this",
    "that",
    "these",
    "which",
    "what",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "how",
    "did",
    "does",
    "do",
    "both",
    "same",
    "s",
    "than",
    "more",
    "first",
    "also",
    "has",
    "had",
    "have",
}


def _words(text: str) -> set[str]:
    return set(normalize_title(text).split()) - _STOPWORDS


def evidence_sentence(text: str, question: str, names: Iterable[str] = (), known: str = "", limit: int = 200) -> str:
    """The sentence of ``text`` (an observation) a reader would quote: the first that names one of
    ``names`` (the next page to look up, or the answer; a title's "(disambiguation)" aside), else
    the one sharing the most words with ``question`` beyond those of ``known`` (the search that
    found the page: every sentence of it is about that), else the first. Cut to ``limit``."""
    found = sentences(text)
    if not found:
        return _cut(text, limit)
    for name in names:
        name = re.sub(r"\s*\([^)]*\)$", "", name)
        key = normalize_title(name)
        for sentence in found:
            if key and f" {key} " in f" {normalize_title(sentence)} ":
                return _cut_around(sentence, name, limit)
    wanted = _words(question) - _words(known)
    shared = [len(wanted & _words(s)) for s in found]
    return _cut(found[shared.index(max(shared))], limit)  # the first of the closest (no words shared: the first)


def search_order(q: Question, reverse_comparison: bool = False) -> list[str]:
    """Gold titles in the order a careful reader would search them; with ``reverse_comparison``,
    a comparison question's in the other order (a bridge question has only one)."""
    titles = list(q.supporting_titles)
    norm_q = f" {normalize_title(q.question)} "

    def position(title: str) -> int:
        i = norm_q.find(f" {normalize_title(title)} ")
        return i if i >= 0 else len(norm_q)

    # Named titles first, in the question's order; unnamed ones keep the supporting-fact order.
    order = sorted(titles, key=lambda t: (position(t), titles.index(t)))
    return order[::-1] if reverse_comparison and q.type == "comparison" else order


class OracleChatModel(BaseChatModel):
    """Answers from ``questions`` (looked up by question text); any other question gets a give-up."""

    # read a comparison question's pages in the other order than the question names them
    reverse_comparison: bool = False
    # quote, in each thought after a search, the evidence sentence of the page read, not its first
    evidence_thoughts: bool = False

    _by_text: dict[str, Question] = PrivateAttr(default_factory=dict)

    def __init__(self, questions: Iterable[Question], **kwargs: Any):
        super().__init__(**kwargs)
        self._by_text = {" ".join(q.question.split()): q for q in questions}

    # the spec that names this teacher (``--model oracle``); a subclass names its own
    spec: ClassVar[str] = "oracle"

    @property
    def _llm_type(self) -> str:
        return f"araft-{self.spec}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.spec}

    def quote(self, q: Question, observation: str, searched: str, next_name: Optional[str]) -> str:
        """What a thought says of the page just read (found by the search ``searched``) before it
        looks up ``next_name``, or, with None, before it answers."""
        if not self.evidence_thoughts:
            return first_sentence(observation)
        # a comparison's answer is one of the names it compares: the sentence that names it is no evidence
        names = [next_name] if next_name else [] if q.type == "comparison" else [q.answer]
        return evidence_sentence(observation, q.question, names, known=searched)

    def _is_gold(self, q: Question, title: str, observation: str) -> bool:
        if title not in q.context:  # no paragraph to compare against: accept any page found
            return not observation.startswith("Could not find")
        return q.shows(title, observation)

    def next_step(self, question: str, scratchpad: str) -> str:
        q = self._by_text.get(" ".join(question.split()))
        if q is None or not q.supporting_titles:
            return f"Thought: I cannot answer this.\nAction: {format_action('Answer', GIVE_UP)}"
        order = search_order(q, self.reverse_comparison)
        done = len(_ACTION.findall(scratchpad))
        observations = _OBSERVATION.findall(scratchpad)
        if done and (len(observations) < done or not self._is_gold(q, order[done - 1], observations[done - 1])):
            return (
                "Thought: The search did not return the page I need, so I cannot be sure.\n"
                f"Action: {format_action('Answer', GIVE_UP)}"
            )
        if done < len(order):
            title = order[done]
            if done == 0 and q.type == "comparison" and len(order) > 1:
                thought = f"I need to compare {order[0]} and {order[1]}. First, {order[0]}."
            elif done == 0:
                thought = f"I need to find out about {title} first."
            else:
                thought = f"{self.quote(q, observations[-1], order[done - 1], title)} Now I need to look up {title}."
            return f"Thought: {thought}\nAction: {format_action('Wikipedia', title)}"
        thought = f"{self.quote(q, observations[-1], order[done - 1], None)} So the answer is {q.answer}."
        return f"Thought: {thought}\nAction: {format_action('Answer', q.answer)}"

    def _generate(
        self, messages: list[BaseMessage], stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        # the run as text, whatever the prompt's layout: one user turn holding the scratchpad, or
        # the question, each step and each observation as turns of their own
        user = "\n".join(m.text for m in messages if m.type != "system")
        first, _, scratchpad = user.partition("\n")
        question = first[len("Question:") :].strip() if first.startswith("Question:") else first
        text = self.next_step(question, scratchpad)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])
