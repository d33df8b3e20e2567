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
        ValueError: no adapter there, ``out`` exists without ``force``, or the model or adapter
            cannot be loaded (naming which and why).
        OutputLocked: another export is writing ``out``.
        WriteError: the disk is full or failing (nothing is left under ``out``).
    """
    from araft_lc.storage.output_lock import output_lock

    target = Path(out)
    with output_lock(target):
        return _merge(model, adapter, target, force)


def _merge(model: str, adapter: str, target: Path, force: bool) -> Path:
    import torch

    from araft_lc.chat.model_spec import ModelSpec
    from araft_lc.runtime.torch.causal_lm import load_causal_lm
    from araft_lc.storage.write_error import writing
    from finetune.tokens import load_tokenizer

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ValueError(f"{adapter} has no adapter_config.json: pass a folder written by `araft train`")
    if target.exists() and not force:
        raise ValueError(f"{target} exists: pass --force to replace it")
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    merged = load_causal_lm(ModelSpec.parse(model).local_id, adapters=adapter, dtype=dtype).merge_and_unload()
    tokenizer_from = adapter if (Path(adapter) / "tokenizer_config.json").is_file() else model
    tokenizer = load_tokenizer(tokenizer_from)
    tmp = target.with_name(target.name + ".tmp")
    with writing(target):
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            merged.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            for f in tmp.iterdir():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"merged {adapter} into {model} -> {target}", file=sys.stderr)
    return target
