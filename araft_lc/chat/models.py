"""Chat models from a spec string (``load_chat_model``). What a spec may say is parsed once, in
``araft_lc.chat.model_spec``; the flags of the commands that load one are the run settings
(``araft_lc.agent.settings``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["load_chat_model"]


def load_chat_model(
    spec: str,
    *,
    adapter: Optional[str] = None,
    load_in_4bit: Optional[bool] = None,
    **options: Any,
) -> BaseChatModel:
    """Build the chat model named by ``spec``: ``ModelSpec.parse(spec).load(...)`` (see
    ``araft_lc.chat.model_spec`` for the forms a spec takes and the options).

    Raises:
        ValueError: the spec names nothing loadable (``ModelLoadError`` for local models).
    """
    from araft_lc.chat.model_spec import ModelSpec

    return ModelSpec.parse(spec).load(adapter=adapter, load_in_4bit=load_in_4bit, **options)
