"""HotpotQA questions from either format: the official JSON list or Hugging Face JSON lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from araft_lc.corpus import CorpusError, iter_json_records, paragraphs_of_record

__all__ = ["Question", "load_questions"]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    type: str = ""  # bridge | comparison
    level: str = ""  # easy | medium | hard
    supporting_titles: tuple[str, ...] = ()  # in the order of the supporting facts, unique
    context: dict[str, str] = field(default_factory=dict)  # title -> paragraph text


def _question(record: Any, where: str) -> Question:
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object")
    qid = record.get("_id", record.get("id"))
    if qid is None or "question" not in record or "answer" not in record:
        raise CorpusError(f"{where}: not a HotpotQA question (needs _id or id, question, answer)")
    facts = record.get("supporting_facts") or []
    titles = facts.get("title", []) if isinstance(facts, dict) else [f[0] for f in facts]
    context = {p.title: p.text for p in paragraphs_of_record(record, where)} if "context" in record else {}
    return Question(
        id=str(qid), question=str(record["question"]), answer=str(record["answer"]),
        type=str(record.get("type", "")), level=str(record.get("level", "")),
        supporting_titles=tuple(dict.fromkeys(titles)), context=context,
    )


def load_questions(path: str | Path) -> Iterator[Question]:
    """Every question of a file, either format.

    Raises:
        CorpusError: the file is missing, or a record is not a HotpotQA question (with file:line).
    """
    for where, record in iter_json_records(path):
        yield _question(record, where)
