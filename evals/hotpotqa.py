"""HotpotQA questions from either format: the official JSON list or Hugging Face JSON lines."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from araft_lc.storage.jsonl import read_jsonl
from araft_lc.wiki.corpus import CorpusError, iter_json_records, paragraphs_of_record
from araft_lc.wiki.index import normalize_title

__all__ = [
    "Question",
    "load_questions",
    "check_unique_ids",
    "LEVELS",
    "parse_levels",
    "sample_questions",
    "ids_in",
    "check_leakage",
]

LEVELS = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    type: str = ""  # bridge | comparison
    level: str = ""  # easy | medium | hard
    supporting_titles: tuple[str, ...] = ()  # in the order of the supporting facts, unique
    context: dict[str, str] = field(default_factory=dict)  # title -> paragraph text

    def shows(self, title: str, observation: str) -> bool:
        """Whether ``observation`` is the page ``title`` of this question's context (its text
        starts the same way; an observation is a page's introduction, cut). False when the
        question holds no paragraph for ``title``."""
        gold = self.context.get(title)
        return gold is not None and normalize_title(observation).startswith(normalize_title(gold)[:60])

    def gold_pages_in(self, observations: Iterable[Optional[str]]) -> list[str]:
        """The supporting titles some observation shows, in supporting-fact order."""
        seen = [o for o in observations if o]
        return [t for t in self.supporting_titles if any(self.shows(t, o) for o in seen)]


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
        id=str(qid),
        question=str(record["question"]),
        answer=str(record["answer"]),
        type=str(record.get("type", "")),
        level=str(record.get("level", "")),
        supporting_titles=tuple(dict.fromkeys(titles)),
        context=context,
    )


def load_questions(path: str | Path) -> Iterator[Question]:
    """Every question of a file, either format.

    Raises:
        CorpusError: the file is missing, or a record is not a HotpotQA question (with file:line).
    """
    for where, record in iter_json_records(path):
        yield _question(record, where)


def check_unique_ids(questions: Sequence[Question]) -> None:
    """Refuse questions that share an id: each id is run, and recorded, once.

    Raises:
        ValueError: naming how many ids repeat and the first few.
    """
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for q in questions:
        if q.id in seen:
            repeated[q.id] = None
        seen.add(q.id)
    if repeated:
        ids = list(repeated)
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        raise ValueError(
            f"{len(ids)} question {'ids appear' if len(ids) > 1 else 'id appears'} more than once in the "
            f"--questions files ({', '.join(ids[:5])}{more}): remove the duplicates, so that each "
            "question is run and recorded once"
        )


def parse_levels(text: str) -> dict[str, int]:
    """``"easy=100,medium=100,hard=100"`` -> ``{"easy": 100, ...}``; ValueError naming the fix."""
    levels: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, count = part.partition("=")
        if not eq or not count.strip().isdigit():
            raise ValueError(f"bad --levels part {part!r}: write LEVEL=COUNT, e.g. easy=100,medium=100,hard=100")
        levels[name.strip()] = int(count)
    return levels


def sample_questions(
    questions: Sequence[Question],
    *,
    levels: Optional[dict[str, int]] = None,
    limit: Optional[int] = None,
    seed: int = 0,
) -> list[Question]:
    """A seeded sample: ``levels`` questions per level (the original's 100 each), else ``limit``
    questions, else all; in a seeded random order, never "the first N rows" of the file. With
    the same seed, a smaller sample is the start of a larger one.

    Raises:
        ValueError: a level has fewer questions than asked for, or none carry a level.
    """
    # one seeded shuffle, then the first N: a smaller sample is part of a larger one (same seed)
    shuffled = list(questions)
    random.Random(seed).shuffle(shuffled)
    if levels:
        picked: list[Question] = []
        for level, count in levels.items():
            pool = [q for q in shuffled if q.level == level]
            if len(pool) < count:
                raise ValueError(
                    f"--levels asks for {count} {level} questions, the files hold {len(pool)}: "
                    "ask for fewer or add questions"
                )
            picked += pool[:count]
        return picked
    return shuffled[:limit] if limit is not None else shuffled


def ids_in(path: str | Path) -> set[str]:
    """The question ids a file holds: trajectories or training records (``question_id``), or
    HotpotQA questions (``_id``/``id``)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--exclude {path}: no such file")
    ids: set[str] = set()
    if p.suffix == ".json":
        return {q.id for q in load_questions(p)}
    row: dict[str, Any]
    for _, row in read_jsonl(p, what="a JSON record with a question id"):
        ids.add(str(row.get("question_id", row.get("_id", row.get("id")))))
    ids.discard("None")
    return ids


def check_leakage(questions: Sequence[Question], exclude: Sequence[str | Path]) -> None:
    """Refuse to evaluate on questions that a training or trajectories file holds.

    Raises:
        ValueError: naming the file, how many overlap, and one id.
    """
    for path in exclude:
        leaked = sorted({q.id for q in questions} & ids_in(path))
        if leaked:
            raise ValueError(
                f"{len(leaked)} of the {len(questions)} evaluation questions are in {path} "
                f"(e.g. {leaked[0]}): evaluate on other questions (another file or seed)"
            )
