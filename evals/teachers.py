"""The model a run over a question set uses: the commands that run question sets (``araft
generate``, ``araft eval``) load their model here, where the teacher specs ``oracle`` and
``visible`` mean something (they answer from the questions' supporting facts)."""

from __future__ import annotations

from typing import Any, Sequence

from langchain_core.language_models import BaseChatModel

from araft_lc.chat.model_spec import ModelSpec
from evals.hotpotqa import Question

__all__ = ["load_model"]


def load_model(
    spec: ModelSpec,
    questions: Sequence[Question],
    wiki: Any = None,
    order: str = "question",
    thoughts: str = "first_sentence",
    **options: Any,
) -> BaseChatModel:
    """The chat model a run over ``questions`` uses: for the teacher ``oracle``, an
    ``OracleChatModel`` answering them; ``visible``, a ``VisibleTeacherChatModel`` searching
    ``wiki`` (the agent's Wikipedia backend) with visible words only; any other spec, what
    ``spec.load(**options)`` loads.
    A teacher reads a comparison question's pages in ``order`` (``question`` or ``reversed``), and its
    thoughts quote of each page read what ``thoughts`` says (``first_sentence`` or ``evidence``).

    Raises:
        ValueError: the spec names nothing loadable.
    """
    if spec.kind != "teacher":
        return spec.load(**options)
    reverse, evidence = order == "reversed", thoughts == "evidence"
    if spec.name == "oracle":
        from evals.oracle import OracleChatModel

        return OracleChatModel(questions, reverse_comparison=reverse, evidence_thoughts=evidence)
    from evals.visible_teacher import VisibleTeacherChatModel

    if wiki is None:
        raise ValueError("the visible teacher searches the agent's Wikipedia backend: pass wiki=")
    return VisibleTeacherChatModel(questions, wiki, reverse_comparison=reverse, evidence_thoughts=evidence)
