"""What one call of ``AraftChatModel`` may set, and the ``Decoding`` it runs with: the model's
fields, overridden by the call's own keywords (``invoke(..., max_tokens=3)``, ``bind(adapter=)``)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from araft_lc.runtime.decoding import Decoding

__all__ = ["CALL_KEYWORDS", "call_decoding"]

# Besides ``stop``: ``tools``/``tool_choice``/``prompt`` come from ``bind_tools``,
# ``structured_output`` from ``with_structured_output``.
CALL_KEYWORDS = {
    "adapter",
    "max_tokens",
    "max_new_tokens",
    "temperature",
    "top_p",
    "seed",
    "deadline",
    "tools",
    "tool_choice",
    "prompt",
    "structured_output",
}


def call_decoding(model: Any, stop: Optional[Sequence[str]], kwargs: dict[str, Any]) -> Decoding:
    """The decoding settings of a call of ``model`` with ``stop`` and ``kwargs``.

    Raises:
        TypeError: a keyword the model does not take. (An adapter the model does not have is the
            engine's to refuse, once, when the call reaches it.)
    """
    unknown = {k for k in set(kwargs) - CALL_KEYWORDS if not k.startswith("ls_")}  # ls_*: tracing hints
    if unknown:
        raise TypeError(
            f"AraftChatModel does not take {', '.join(sorted(unknown))}: per call it takes "
            f"{', '.join(sorted(CALL_KEYWORDS - {'tools', 'tool_choice', 'structured_output'}))}"
        )
    adapter = kwargs.get("adapter", model.adapter)
    max_new = kwargs.get("max_tokens", kwargs.get("max_new_tokens", model.max_new_tokens))
    stops = tuple(dict.fromkeys([*(model.stop or ()), *(stop or ())]))
    return Decoding(
        adapter,
        stops,
        int(max_new),
        float(kwargs.get("temperature", model.temperature)),
        float(kwargs.get("top_p", model.top_p)),
        kwargs.get("seed", model.seed),
    )
