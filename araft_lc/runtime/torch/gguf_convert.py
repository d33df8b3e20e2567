"""A GGUF as a plain transformers folder, converted once into the cache, for the torch backend
and for training (llama.cpp reads the GGUF itself and needs no conversion).

transformers loads a GGUF (dequantised) as a ``LlamaForCausalLM``, but slowly, and a GGUF-loaded
model refuses ``save_pretrained``: its weights are copied into a plain model, which is saved.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from araft_lc.storage.cache_dir import cache_dir

__all__ = ["hf_folder_of_gguf"]


def _folder(gguf: Path) -> Path:
    """Where ``gguf`` is converted to: named for the model, keyed by the file's name and size."""
    key = hashlib.sha256(f"{gguf.name}:{gguf.stat().st_size}".encode()).hexdigest()[:8]
    return cache_dir("models") / f"{gguf.name.split('.')[0].lower()}-{key}"


def hf_folder_of_gguf(gguf_file: str | Path) -> Path:
    """A transformers folder of ``gguf_file``'s model and tokenizer, converted on first use.

    Raises:
        ModelLoadError: the file is missing, or transformers cannot read it.
    """
    from araft_lc.runtime.torch.causal_lm import ModelLoadError

    gguf = Path(gguf_file).expanduser()
    if not gguf.is_file():
        raise ModelLoadError(f"no GGUF file at {gguf}: pass the model's .gguf")
    target = _folder(gguf)
    if (target / "config.json").is_file():
        return target
    print(f"converting {gguf} once into {target} ...", file=sys.stderr, flush=True)

    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from araft_lc.storage.error_text import error_text
    from araft_lc.storage.write_error import writing

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:
        raise ModelLoadError(f"transformers cannot read {gguf} ({error_text(e)}): pass a Llama GGUF") from None
    config = gguf_model.config.to_dict()
    config.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig(**config))
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config.do_sample = False
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    with writing(target):  # a full cache disk: one line naming the folder, no half-written copy left
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
