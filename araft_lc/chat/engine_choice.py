"""Which engine runs an ``AraftChatModel``, and building it: ``DecodeEngine`` on transformers, or
``LlamaCppEngine`` on llama.cpp where the model ships as a GGUF and runs on a CPU (measured
several times faster for one stream there, benchmarks/RESULTS.md)."""

from __future__ import annotations

import os
from typing import Any

from araft_lc.runtime.causal_lm import ModelLoadError, default_device, load_causal_lm, load_tokenizer, pad_with_eos
from araft_lc.runtime.text_engine import TextEngine

__all__ = ["ENGINE_FIELDS", "build_engine", "choose_backend"]

# The chat model's fields that say how the torch engine decodes (``DecodeEngine``'s arguments).
ENGINE_FIELDS = ("prefix_cache", "prefix_cache_entries", "max_batch_size", "batch_wait_ms", "batching", "decode",
                 "static_cache_lengths", "compile_decode")


def choose_backend(chat: Any, loaded: bool) -> str:
    """The backend that runs ``chat`` (an ``AraftChatModel``; ``loaded``: it wraps a loaded model):
    the one it asks for, else llama.cpp where it can run the model and is installed, else torch.

    Raises:
        ValueError: llama.cpp asked for where it cannot run the model, naming why.
        ModelLoadError: llama.cpp asked for and not installed.
    """
    from araft_lc.runtime.llama_cpp_engine import INSTALL_HINT, llama_cpp_installed

    if chat.backend == "torch":
        return "torch"
    device = chat.device or default_device()
    local = all(os.path.isfile(os.path.join(os.path.expanduser(p), "adapter_config.json"))
                for p in chat.adapters.values())
    reasons = [why for why, bad in (
        ("a loaded model (model=) runs on transformers", loaded),
        ("it needs the model as a GGUF: give gguf_file=", chat.gguf_file is None),
        ("4-bit is a transformers (bitsandbytes) quantisation", chat.load_in_4bit),
        ('decode="static" is a transformers path', chat.decode == "static"),
        (f"it runs on a CPU, and this model is on {device}", device != "cpu"),
        ("it converts local PEFT adapter folders only", not local)) if bad]
    if chat.backend is None:
        return "llama.cpp" if not reasons and llama_cpp_installed() else "torch"
    if reasons:
        raise ValueError(f"backend='llama.cpp' cannot run this model: {reasons[0]}")
    if not llama_cpp_installed():
        raise ModelLoadError(f"backend='llama.cpp' needs llama-cpp-python: {INSTALL_HINT}")
    return "llama.cpp"


def build_engine(chat: Any, model: Any = None, tokenizer: Any = None) -> TextEngine:
    """The engine of ``chat`` on its ``backend``: around ``model`` and ``tokenizer`` when given,
    else loaded from ``chat.model_id`` (and ``chat.gguf_file`` on llama.cpp).

    Raises:
        ModelLoadError: the model, its tokenizer or an adapter does not load.
    """
    merged = chat.adapter if chat.merge_lora else None
    if chat.backend == "llama.cpp":
        from araft_lc.runtime.llama_cpp_engine import LlamaCppEngine

        tokenizer = load_tokenizer(chat.model_id, trust_remote_code=chat.trust_remote_code)
        return LlamaCppEngine(chat.gguf_file, pad_with_eos(tokenizer), adapters=chat.adapters, merged=merged,
                              max_batch_size=chat.max_batch_size)
    from araft_lc.runtime.engine import DecodeEngine

    if model is None:
        model = load_causal_lm(chat.model_id, adapters=chat.adapters, quantize_4bit=chat.load_in_4bit,
                               device=chat.device or default_device(), trust_remote_code=chat.trust_remote_code,
                               allow_pickle=chat.allow_pickle)
        tokenizer = load_tokenizer(chat.model_id, trust_remote_code=chat.trust_remote_code)
    return DecodeEngine(model, pad_with_eos(tokenizer), adapters=list(chat.adapters), merged=merged,
                        **{k: getattr(chat, k) for k in ENGINE_FIELDS})
