"""Model specs: one string names any chat model the agent can run on.

- a preset: ``smollm2-135m``, ``araft-sft``, ``araft-dpo``
- ``hf:PATH_OR_ID[+ADAPTER]`` or a bare local folder: ``AraftChatModel``
- ``openai:MODEL@BASE_URL``: ``ChatOpenAI`` on an OpenAI-compatible server (vLLM); the API key
  comes from ``OPENAI_API_KEY`` (any value for a local vLLM server).
- ``oracle``: ``OracleChatModel``, which answers the given HotpotQA questions from their
  supporting facts (the offline stand-in for a teacher).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from langchain_core.language_models import BaseChatModel

if TYPE_CHECKING:
    from evals.hotpotqa import Question

__all__ = ["load_chat_model", "local_model_id"]


def load_chat_model(
    spec: str,
    *,
    adapter: Optional[str] = None,
    load_in_4bit: Optional[bool] = None,
    questions: Optional[Sequence[Question]] = None,
    **options: Any,
) -> BaseChatModel:
    """Build the chat model named by ``spec`` (see the module docstring).

    Args:
        spec: the model spec.
        adapter: a LoRA adapter folder to load on top (active), for local models.
        load_in_4bit: override the preset's quantisation (local models).
        questions: what ``oracle`` answers (other specs ignore them and it ignores the rest).
        options: passed to the model class (``max_new_tokens``, ``temperature``, ``seed``).

    Raises:
        ValueError: the spec names nothing loadable (``ModelLoadError`` for local models).
    """
    from araft_lc.chat_model import AraftChatModel, ModelLoadError
    from araft_lc.presets import PRESETS, preset_fields

    spec = spec.strip()
    if spec == "oracle":
        if questions is None:
            raise ValueError("the oracle answers from given HotpotQA questions: use it with araft generate or araft eval")
        from araft_lc.oracle import OracleChatModel

        return OracleChatModel(questions)
    if spec.startswith("openai:"):
        body = spec[len("openai:"):]
        model, sep, base_url = body.partition("@")
        if not model or not sep or not base_url:
            raise ValueError(f"bad model spec {spec!r}: write openai:MODEL@BASE_URL")
        if adapter:
            raise ValueError("--adapter applies to local models; on a vLLM server name the LoRA module as MODEL")
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            raise ValueError("openai: specs need langchain-openai: pip install 'araft[openai]'") from None
        return ChatOpenAI(
            model=model, base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"),
            temperature=options.get("temperature", 0.0), max_tokens=options.get("max_new_tokens", 256),
            seed=options.get("seed"),
        )
    overrides: dict[str, Any] = dict(options)
    if load_in_4bit is not None:
        overrides["load_in_4bit"] = load_in_4bit
    if spec in PRESETS:
        fields = preset_fields(spec)
        if adapter:
            fields.update(adapters={"adapter": adapter}, adapter="adapter")
        return AraftChatModel(**{**fields, **overrides})
    model_id, spec_adapter = _hf_spec(spec)
    adapter = adapter or spec_adapter or None
    if not spec.startswith("hf:") and not Path(model_id).exists() and "/" not in model_id:
        raise ModelLoadError(
            f"unknown model spec {spec!r}: use a preset ({', '.join(PRESETS)}), hf:PATH_OR_ID[+ADAPTER], "
            "a local model folder, or openai:MODEL@BASE_URL"
        )
    adapters = {"adapter": adapter} if adapter else {}
    return AraftChatModel(model_id=model_id, adapters=adapters, adapter="adapter" if adapter else None,
                          **overrides)


def local_model_id(spec: str) -> str:
    """The Hugging Face folder or Hub id behind a local model spec (a preset, hf:PATH, a folder);
    an adapter after ``+`` is left out. Raises ValueError for ``openai:`` specs."""
    from araft_lc.presets import PRESETS, preset_fields

    spec = spec.strip()
    if spec.startswith("openai:"):
        raise ValueError(f"{spec!r} is a server, not local weights: name a preset, hf:PATH or a folder")
    if spec in PRESETS:
        return str(preset_fields(spec)["model_id"])
    return _hf_spec(spec)[0]


def _hf_spec(spec: str) -> tuple[str, str]:
    """``hf:PATH_OR_ID[+ADAPTER]`` or ``PATH[+ADAPTER]`` -> (path or id, adapter or "")."""
    model_id, _, adapter = (spec[len("hf:"):] if spec.startswith("hf:") else spec).partition("+")
    return model_id, adapter
