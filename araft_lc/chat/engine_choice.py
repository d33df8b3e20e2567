"""Which engine runs an ``AraftChatModel``, and building it: ``DecodeEngine`` on transformers, or
``LlamaCppEngine`` on llama.cpp where the model ships as a GGUF and runs on a CPU (measured
several times faster for one stream there, benchmarks/RESULTS.md).

Left to choose (``backend=None``), the model takes llama.cpp only after a child process has
shown that llama.cpp decodes these weights on this CPU (``araft_lc.runtime.llama_cpp.check``,
asked once and remembered): a native fault would kill the whole process. A failed check falls
back to torch with one warning; asked for by name, llama.cpp that fails it is an error.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from araft_lc.runtime.text_engine import TextEngine
from araft_lc.runtime.torch.causal_lm import (
    ModelLoadError,
    default_device,
    load_causal_lm,
    load_tokenizer,
    pad_with_eos,
)

__all__ = ["ENGINE_FIELDS", "BackendChoice", "build_engine", "choose_backend", "torch_installed"]

# The chat model's fields that say how the torch engine decodes (``DecodeEngine``'s arguments).
ENGINE_FIELDS = (
    "prefix_cache",
    "prefix_cache_entries",
    "max_batch_size",
    "batch_wait_ms",
    "batching",
    "decode",
    "static_cache_lengths",
    "compile_decode",
)
TORCH_HINT = "pip install 'araft[torch]' (on a CPU-only machine, torch from https://download.pytorch.org/whl/cpu)"


@dataclass(frozen=True)
class BackendChoice:
    """The backend that runs a model, and why (``araft info`` and ``araft -v ask`` print it)."""

    backend: Literal["torch", "llama.cpp"]
    why: str


def torch_installed() -> bool:
    """Whether torch and transformers (the ``torch`` extra) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _llama_cpp_weights(chat: Any) -> str:
    """The GGUF llama.cpp will load for ``chat``: its ``gguf_file``, or with ``merge_lora`` the copy
    with the adapter merged in (converted once into the cache)."""
    if not chat.merge_lora:
        return chat.gguf_file
    from araft_lc.runtime.llama_cpp.gguf_lora import GGUFAdapterError, gguf_lora

    try:
        return str(gguf_lora(chat.adapters[chat.adapter], chat.gguf_file, merged=True))
    except GGUFAdapterError as e:
        raise ModelLoadError(f"adapter {chat.adapter!r}: {e}") from None


def choose_backend(chat: Any, loaded: bool) -> BackendChoice:
    """The backend that runs ``chat`` (an ``AraftChatModel``; ``loaded``: it wraps a loaded model):
    the one it asks for, else llama.cpp where it can run the model, is installed and passes its
    check on this CPU, else torch.

    Raises:
        ValueError: llama.cpp asked for where it cannot run the model, naming why.
        ModelLoadError: the backend asked for (or the only one there is) is not installed, or
            llama.cpp asked for and failing its check.
    """
    from araft_lc.runtime.llama_cpp.check import check_llama_cpp
    from araft_lc.runtime.llama_cpp.lib import INSTALL_HINT, llama_cpp_installed

    if chat.backend == "torch":
        return BackendChoice("torch", "asked for (backend='torch')")
    device = chat.device or default_device()
    local = all(
        os.path.isfile(os.path.join(os.path.expanduser(p), "adapter_config.json")) for p in chat.adapters.values()
    )
    reasons = [
        why
        for why, bad in (
            ("a loaded model (model=) runs on transformers", loaded),
            ("it needs the model as a GGUF: give gguf_file=", chat.gguf_file is None),
            ("4-bit is a transformers (bitsandbytes) quantisation", chat.load_in_4bit),
            ('decode="static" is a transformers path', chat.decode == "static"),
            (f"it runs on a CPU, and this model is on {device}", device != "cpu"),
            ("it converts local PEFT adapter folders only", not local),
        )
        if bad
    ]
    asked = chat.backend == "llama.cpp"
    if reasons:
        if asked:
            raise ValueError(f"backend='llama.cpp' cannot run this model: {reasons[0]}")
        return BackendChoice("torch", f"llama.cpp cannot run this model: {reasons[0]}")
    if not llama_cpp_installed():
        if asked or not torch_installed():
            raise ModelLoadError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}")
        return BackendChoice("torch", "llama-cpp-python is not installed")
    if not Path(chat.gguf_file).is_file():
        raise ModelLoadError(f"no GGUF file at {chat.gguf_file}: pass the model's .gguf as gguf_file=")
    check = check_llama_cpp(_llama_cpp_weights(chat))
    if check.ok:
        return BackendChoice(
            "llama.cpp",
            ("asked for (backend='llama.cpp')" if asked else "a GGUF on the CPU, with llama-cpp-python installed")
            + f"; it decoded these weights on this CPU in a check process "
            f"({'remembered' if check.cached else f'{check.seconds:.1f} s'})",
        )
    if asked:
        raise ModelLoadError(
            f"llama.cpp cannot run on this machine: {check.reason}; use --backend torch (backend='torch')"
        )
    if not torch_installed():
        raise ModelLoadError(
            f"llama.cpp cannot run on this machine ({check.reason}) and the torch backend is "
            f"not installed: {TORCH_HINT}"
        )
    why = f"llama.cpp failed its check on this CPU: {check.reason}"
    warnings.warn(
        f"{why}; running on torch instead (slower). --backend torch (backend='torch') skips the check",
        RuntimeWarning,
        stacklevel=3,
    )
    return BackendChoice("torch", why)


def _hf_folder(chat: Any) -> str:
    """The transformers folder or Hub id of ``chat``'s weights: a GGUF ``model_id`` is converted
    once into the cache."""
    if chat.model_id.endswith(".gguf"):
        from araft_lc.runtime.torch.gguf_convert import hf_folder_of_gguf

        return str(hf_folder_of_gguf(chat.model_id))
    return chat.model_id


def build_engine(chat: Any, model: Any = None, tokenizer: Any = None) -> TextEngine:
    """The engine of ``chat`` on its ``backend``: around ``model`` and ``tokenizer`` when given,
    else loaded from ``chat.model_id`` (on llama.cpp, ``chat.gguf_file`` and its own tokenizer).

    Raises:
        ModelLoadError: the model, its tokenizer or an adapter does not load.
    """
    merged = chat.adapter if chat.merge_lora else None
    if chat.backend == "llama.cpp":
        from araft_lc.runtime.llama_cpp.engine import LlamaCppEngine
        from araft_lc.runtime.llama_cpp.gguf_tokenizer import GGUFTokenizer

        return LlamaCppEngine(
            chat.gguf_file,
            GGUFTokenizer(chat.gguf_file),
            adapters=chat.adapters,
            merged=merged,
            max_batch_size=chat.max_batch_size,
        )
    if not torch_installed():
        raise ModelLoadError(f"the torch backend needs torch and transformers: {TORCH_HINT}")
    from araft_lc.runtime.torch.engine import DecodeEngine

    if model is None:
        folder = _hf_folder(chat)
        model = load_causal_lm(
            folder,
            adapters=chat.adapters,
            quantize_4bit=chat.load_in_4bit,
            device=chat.device or default_device(),
            trust_remote_code=chat.trust_remote_code,
            allow_pickle=chat.allow_pickle,
        )
        tokenizer = load_tokenizer(folder, trust_remote_code=chat.trust_remote_code)
    return DecodeEngine(
        model,
        pad_with_eos(tokenizer),
        adapters=list(chat.adapters),
        merged=merged,
        **{k: getattr(chat, k) for k in ENGINE_FIELDS},
    )
