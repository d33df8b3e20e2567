"""The model a run over a question set uses: the commands that run question sets (``araft
generate``, ``araft eval``) load their model here, where the teacher specs ``oracle`` and
``visible`` mean something (they answer from the questions' supporting facts)."""

from __future__ import annotations

from typing import Any, Sequence

from langchain_core.language_models import BaseChatModel

from evals.hotpotqa import Question

__all__ = ["load_model"]


def load_model(spec: str, questions: Sequence[Question], backend: Any = None, **options: Any) -> BaseChatModel:
    """The chat model a run over ``questions`` uses: ``oracle``, an ``OracleChatModel`` answering
    them; ``visible``, a ``VisibleTeacherChatModel`` searching ``backend`` with visible words
    only; or whatever ``araft_lc.models.load_chat_model(spec, **options)`` loads.

    Raises:
        ValueError: the spec names nothing loadable.
    """
    if spec.strip() == "oracle":
        from evals.oracle import OracleChatModel

        return OracleChatModel(questions)
    if spec.strip() == "visible":
        from evals.visible_teacher import VisibleTeacherChatModel

        if backend is None:
            raise ValueError("the visible teacher searches the agent's Wikipedia backend: pass backend=")
        return VisibleTeacherChatModel(questions, backend)
    from araft_lc.models import load_chat_model

    return load_chat_model(spec, **options)
