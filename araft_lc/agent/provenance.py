"""A run's provenance: every setting that changes what a run writes, as the run resolved it.

``araft ask --json``, ``araft generate`` and ``araft eval`` put it in each record's ``producer``
(and ``eval`` in its report), built here once. The settings say what was asked (``backend:
null`` leaves the choice to the model); this says what ran (the backend the model chose, the
prompt version it rendered, the tools it had), so two records with the same provenance came from
the same agent.
"""

from __future__ import annotations

from typing import Any, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from araft_lc.agent.factory import wikipedia_of
from araft_lc.agent.settings import RunSettings

__all__ = ["provenance"]


def provenance(
    settings: RunSettings, model: BaseChatModel, tools: Sequence[BaseTool], prompt_version: str
) -> dict[str, Any]:
    """What made a run's records: the model as named and the backend it ran on (None for a
    teacher or a server), the prompt, the tools, and the decoding and run settings. The sampled
    runs' temperature and the vote appear only where ``samples`` is above 1."""
    wiki = wikipedia_of(tools)
    out: dict[str, Any] = {
        "model": settings.model,
        "adapter": settings.adapter,
        "backend": getattr(model, "backend", None),
        "prompt_version": prompt_version,
        "tool_backend": wiki.backend.name if wiki else None,
        "tools": [t.name for t in tools],
        "max_steps": settings.max_steps,
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "seed": settings.seed,
        "observation_chars": settings.observation_chars,
        "repetition_guard": settings.repetition_guard,
        "samples": settings.samples,
    }
    if settings.samples > 1:
        out.update(sample_temperature=settings.sample_temperature, vote=settings.vote)
    return out
