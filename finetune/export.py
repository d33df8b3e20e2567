"""``araft export merge``: base weights with a LoRA adapter folded in, as a plain model folder.

For serving without peft (vLLM without ``--enable-lora``, or llama.cpp's GGUF conversion). The
base is loaded unquantised (bf16 on CUDA, fp32 on a CPU): merging into 4-bit weights would round
the adapter away.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["merge_adapter"]


def merge_adapter(model: str, adapter: str, out: str, *, force: bool = False) -> Path:
    """Write ``model`` + ``adapter`` merged to ``out`` (safetensors and the tokenizer).

    Raises:
        ValueError: no adapter there, or ``out`` exists without ``force``.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from araft_lc.models import local_model_id
    from finetune.tokens import load_tokenizer

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ValueError(f"{adapter} has no adapter_config.json: pass a folder written by `araft train`")
    target = Path(out)
    if target.exists() and not force:
        raise ValueError(f"{target} exists: pass --force to replace it")
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    base = AutoModelForCausalLM.from_pretrained(local_model_id(model), dtype=dtype, use_safetensors=True)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer_from = adapter if (Path(adapter) / "tokenizer_config.json").is_file() else model
    load_tokenizer(tokenizer_from).save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    print(f"merged {adapter} into {model} -> {target}", file=sys.stderr)
    return target
