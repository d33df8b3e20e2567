"""Model specs: one string names any chat model the agent can run on.

- a preset: ``smollm2-135m``, ``araft-sft``, ``araft-dpo``
- ``hf:PATH_OR_ID[+ADAPTER]`` or a bare local folder: ``AraftChatModel``
- ``openai:MODEL@BASE_URL``: ``ChatOpenAI`` on an OpenAI-compatible server (vLLM); the API key
  comes from ``OPENAI_API_KEY`` (any value for a local vLLM server).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["check_model", "load_chat_model", "local_model_id", "check_server", "error_text"]


def check_server(spec: str, timeout: float = 5.0) -> None:
    """For an ``openai:`` spec, fail fast, before any work, when the server does not answer."""
    import urllib.error
    import urllib.request

    if not spec.strip().startswith("openai:"):
        return
    base_url = _openai_spec(spec)[1]
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered (auth or routing aside): the server is there
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ValueError(f"model server {base_url} is unreachable ({e}): start it or fix the URL") from None


def load_chat_model(
    spec: str,
    *,
    adapter: Optional[str] = None,
    load_in_4bit: Optional[bool] = None,
    **options: Any,
) -> BaseChatModel:
    """Build the chat model named by ``spec`` (see the module docstring).

    Args:
        spec: the model spec.
        adapter: a LoRA adapter folder to load on top (active), for local models.
        load_in_4bit: override the preset's quantisation (local models).
        options: passed to the model class (``max_new_tokens``, ``temperature``, ``seed``; for
            local models also ``trust_remote_code`` and ``allow_pickle``, both off by default;
            for ``openai:`` specs ``request_timeout`` (120 s) and ``max_retries`` (2)).

    Raises:
        ValueError: the spec names nothing loadable (``ModelLoadError`` for local models).
    """
    from araft_lc.chat_model import AraftChatModel, ModelLoadError
    from araft_lc.presets import MAX_NEW_TOKENS, PRESETS, preset_fields

    spec = spec.strip()
    check_model(spec, adapter)
    if spec.startswith("openai:"):
        model, base_url = _openai_spec(spec)
        if adapter:
            raise ValueError("--adapter applies to local models; on a vLLM server name the LoRA module as MODEL")
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            raise ValueError("openai: specs need langchain-openai: pip install 'araft[openai]'") from None
        # Every request is bounded: a hung server costs at most request_timeout per try.
        return ChatOpenAI(
            model=model, base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"),
            temperature=options.get("temperature", 0.0), max_tokens=options.get("max_new_tokens", MAX_NEW_TOKENS),
            seed=options.get("seed"), timeout=options.get("request_timeout", 120.0),
            max_retries=options.get("max_retries", 2),
        )
    overrides: dict[str, Any] = {k: v for k, v in options.items() if k not in ("request_timeout", "max_retries")}
    if load_in_4bit is not None:
        overrides["load_in_4bit"] = load_in_4bit
    if spec in PRESETS:
        fields = preset_fields(spec)
        if adapter:
            fields.update(adapters={"adapter": adapter}, adapter="adapter")
        return _build_local(AraftChatModel, {**fields, **overrides})
    model_id, spec_adapter = _hf_spec(spec)
    adapter = adapter or spec_adapter or None
    if not spec.startswith("hf:") and not Path(model_id).exists() and "/" not in model_id:
        raise ModelLoadError(
            f"unknown model spec {spec!r}: use a preset ({', '.join(PRESETS)}), hf:PATH_OR_ID[+ADAPTER], "
            "a local model folder, or openai:MODEL@BASE_URL"
        )
    adapters = {"adapter": adapter} if adapter else {}
    return _build_local(AraftChatModel, {"model_id": model_id, "adapters": adapters,
                                         "adapter": "adapter" if adapter else None, **overrides})


def _build_local(cls: Any, fields: dict[str, Any]) -> BaseChatModel:
    """``cls(**fields)``, with a load error of any kind (transformers, huggingface_hub and peft
    raise many: a config that cannot describe its weights, a shape mismatch) as one
    ``ModelLoadError`` naming the folder and the cause."""
    from araft_lc.chat_model import ModelLoadError

    try:
        return cls(**fields)
    except ValueError:  # ModelLoadError, a field's validation: already one line naming the problem
        raise
    except Exception as e:  # noqa: BLE001 - whatever the libraries raise, one line
        adapters = fields.get("adapters") or {}
        what = f"model {fields['model_id']!r}" + (f" with adapter {', '.join(map(str, adapters.values()))}"
                                                   if adapters else "")
        raise ModelLoadError(f"cannot load {what} ({error_text(e)}): pass a folder whose config.json "
                             "describes its weights (and an adapter trained on that model)") from None


def error_text(e: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line (the libraries' messages run over several), cut at ``limit``."""
    text = " ".join(str(e).split()) or "no detail"
    return f"{type(e).__name__}: {text if len(text) <= limit else text[:limit - 3] + '...'}"


def _looks_local(path: str) -> bool:
    """A path, not a Hub id (``org/name``): it exists, or starts like a path, or has more parts."""
    return Path(path).expanduser().exists() or path.startswith(("/", ".", "~")) or path.count("/") > 1


def check_model(spec: str, adapter: Optional[str] = None) -> None:
    """Check a model spec and an adapter before anything loads (milliseconds, no imports of the
    ML stack): a preset's package, a model folder's config.json, an adapter folder's
    adapter_config.json.

    Raises:
        ModelLoadError: (a ValueError) naming what is wrong and what to pass instead.
    """
    from araft_lc.chat_model import ModelLoadError
    from araft_lc.presets import PRESETS

    spec = spec.strip()
    if spec in ("oracle", "visible"):  # teachers that only the commands running question sets can build
        raise ModelLoadError(f"the {spec} teacher answers from given HotpotQA questions: use it with araft "
                             "generate or araft eval")
    if spec in PRESETS:
        model_id, spec_adapter = "", ""
    elif spec.startswith("openai:"):
        _openai_spec(spec)
        return
    else:
        model_id, spec_adapter = _hf_spec(spec)
        if not spec.startswith("hf:") and not _looks_local(model_id) and "/" not in model_id:
            raise ModelLoadError(f"unknown model spec {spec!r}: use a preset ({', '.join(PRESETS)}), "
                             "hf:PATH_OR_ID[+ADAPTER], a local model folder, or openai:MODEL@BASE_URL")
        if _looks_local(model_id):
            folder = Path(model_id).expanduser()
            if not folder.is_dir():
                raise ModelLoadError(f"model folder {model_id} does not exist: pass a folder holding config.json "
                                 f"and weights, a preset ({', '.join(PRESETS)}), or hf:ORG/NAME")
            if not (folder / "config.json").is_file():
                raise ModelLoadError(f"{model_id} is not a model folder (it has no config.json): pass a folder "
                                 "holding config.json and weights, e.g. one written by save_pretrained")
    for path in filter(None, [adapter, spec_adapter]):
        if _looks_local(path):
            folder = Path(path).expanduser()
            if not folder.is_dir():
                raise ModelLoadError(f"adapter folder {path} does not exist: pass a folder written by araft train")
            if not (folder / "adapter_config.json").is_file():
                raise ModelLoadError(f"{path} is not a LoRA adapter folder (it has no adapter_config.json): pass "
                                 "the output_dir of araft train")


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


def _openai_spec(spec: str) -> tuple[str, str]:
    """``openai:MODEL@BASE_URL`` -> (model, base URL); ValueError naming the form otherwise."""
    model, sep, base_url = spec.strip()[len("openai:"):].partition("@")
    if not model or not sep or not base_url:
        raise ValueError(f"bad model spec {spec!r}: write openai:MODEL@BASE_URL")
    return model, base_url


def _hf_spec(spec: str) -> tuple[str, str]:
    """``hf:PATH_OR_ID[+ADAPTER]`` or ``PATH[+ADAPTER]`` -> (path or id, adapter or "")."""
    model_id, _, adapter = (spec[len("hf:"):] if spec.startswith("hf:") else spec).partition("+")
    return model_id, adapter
