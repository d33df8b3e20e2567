"""A run's bounds: what every door (``araft ask``, the LangGraph server, the Python API, the run
settings) takes unless told otherwise, so the doors cannot drift apart, and the one check of them."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "MAX_NEW_TOKENS",
    "MAX_STEPS",
    "MAX_SECONDS",
    "OBSERVATION_CHARS",
    "TOOL_TIMEOUT",
    "MAX_QUESTION_CHARS",
    "check_bounds",
]

MAX_NEW_TOKENS = 256  # tokens a model may write per step
MAX_STEPS = 5  # model calls per run (the cap of the original Araft project)
MAX_SECONDS = 600.0  # wall time per run
OBSERVATION_CHARS = 600  # every observation is cut to this many characters (a page's on a sentence)
TOOL_TIMEOUT = 60.0  # seconds a tool call may take (less where the run's deadline is sooner)
MAX_QUESTION_CHARS = 2000  # a longer question is refused (HotpotQA's longest: 248)


def check_bounds(**values: Optional[float]) -> None:
    """The one check of a run's bounds (the agent's and the run settings'): each given value is
    positive (None: unbounded).

    Raises:
        ValueError: naming the first that is not.
    """
    for key, value in values.items():
        if value is not None and value <= 0:
            raise ValueError(
                f"{key} must be at least 1, got {value}"
                if key == "max_steps"
                else f"{key} must be positive, got {value}"
            )
