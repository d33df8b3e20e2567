"""A PEFT LoRA adapter as a llama.cpp LoRA adapter (GGUF), written once into the cache.

llama.cpp applies a GGUF adapter at run time, ``W x + (alpha / r) B (A x)``, over the base model's
own quantised weights, as peft does over ours. The file holds, per adapted linear layer, PEFT's
``lora_A`` (r x in) and ``lora_B`` (out x r) under the GGUF tensor names (``blk.N.attn_q.weight``
and so on), with ``general.type = adapter``, ``adapter.type = lora`` and ``adapter.lora.alpha``,
as llama.cpp's own ``convert_lora_to_gguf.py`` writes them. One detail carries over from its
converter: a Llama GGUF stores the query and key projections with their rows permuted for its
rotary layout, so ``lora_B`` of ``q_proj`` and ``k_proj`` is permuted the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from araft_lc.storage.cache_dir import cache_dir

__all__ = ["GGUFAdapterError", "gguf_lora", "write_gguf_lora"]

_FORMAT = 1  # bump when the written file changes, so cached conversions are made again
_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
          "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
          "mlp.down_proj": "ffn_down"}


class GGUFAdapterError(ValueError):
    """An adapter that llama.cpp cannot run as it is."""


def _permute(weights: Any, heads: int) -> Any:
    """The rows of a query/key projection in llama.cpp's rotary order (its converter's ``permute``)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(
        weights.shape)


def _heads(base_gguf: Path) -> tuple[int, int]:
    """The base model's attention and key/value head counts, from its GGUF metadata."""
    from gguf import GGUFReader

    reader = GGUFReader(str(base_gguf))
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    if arch != "llama":
        raise GGUFAdapterError(f"{base_gguf.name} is a {arch!r} model: adapters are converted for Llama GGUFs only")

    def field(key: str) -> int:
        return int(reader.fields[f"llama.{key}"].parts[-1][0])

    heads = field("attention.head_count")
    return heads, field("attention.head_count_kv") if "llama.attention.head_count_kv" in reader.fields else heads


def write_gguf_lora(adapter_dir: Path, base_gguf: Path, out: Path) -> None:
    """Write ``adapter_dir`` (a PEFT LoRA folder) as a llama.cpp adapter for ``base_gguf`` at ``out``.

    Raises:
        GGUFAdapterError: the adapter is not a plain LoRA on a Llama's linear layers.
    """
    import numpy as np
    from gguf import GGUFType, GGUFWriter, Keys
    from safetensors.torch import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or config.get("use_dora") or config.get("modules_to_save") or \
            config.get("rank_pattern") or config.get("alpha_pattern"):
        raise GGUFAdapterError(f"{adapter_dir} is not a plain LoRA (DoRA, saved modules or per-module ranks): "
                               "llama.cpp runs plain LoRA adapters; use the torch backend")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    if config.get("use_rslora"):  # peft scales by alpha / sqrt(r), llama.cpp by alpha / r
        alpha *= math.sqrt(rank)
    heads, kv_heads = _heads(base_gguf)
    pairs: dict[str, dict[str, Any]] = {}
    for name, tensor in load_file(str(adapter_dir / "adapter_model.safetensors")).items():
        # base_model.model.model.layers.N.<module>.lora_A.weight
        parts = name.split(".")
        if "layers" not in parts or parts[-2] not in ("lora_A", "lora_B"):
            raise GGUFAdapterError(f"{adapter_dir}: tensor {name!r} is not a LoRA matrix of a decoder layer; "
                                   "use the torch backend")
        layer = int(parts[parts.index("layers") + 1])
        module = ".".join(parts[parts.index("layers") + 2:-2])
        if module not in _NAMES:
            raise GGUFAdapterError(f"{adapter_dir}: LoRA on {module!r}, which llama.cpp adapters do not name; "
                                   "use the torch backend")
        pairs.setdefault(f"blk.{layer}.{_NAMES[module]}.weight", {})[parts[-2]] = tensor.float().numpy()
    writer = GGUFWriter(str(out), "llama")
    writer.add_type(GGUFType.ADAPTER)
    writer.add_string(Keys.Adapter.TYPE, "lora")
    writer.add_float32(Keys.Adapter.LORA_ALPHA, alpha)
    for name in sorted(pairs):
        a, b = pairs[name]["lora_A"], pairs[name]["lora_B"]
        if ".attn_q." in name:
            b = _permute(b, heads)
        elif ".attn_k." in name:
            b = _permute(b, kv_heads)
        writer.add_tensor(name + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def gguf_lora(adapter_dir: str, base_gguf: str) -> Path:
    """``adapter_dir`` converted for ``base_gguf`` (``write_gguf_lora``), made once per content
    into the cache (``$ARAFT_CACHE_DIR/gguf-lora``) and reused.

    Raises:
        GGUFAdapterError: the adapter is not a local PEFT LoRA folder llama.cpp can run.
    """
    folder = Path(adapter_dir).expanduser()
    if not (folder / "adapter_config.json").is_file() or not (folder / "adapter_model.safetensors").is_file():
        raise GGUFAdapterError(f"{adapter_dir} is not a local PEFT adapter folder (adapter_config.json and "
                               "adapter_model.safetensors): llama.cpp needs one; use the torch backend")
    digest = hashlib.sha256(f"{_FORMAT}:{Path(base_gguf).name}".encode())
    for part in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((folder / part).read_bytes())
    out = cache_dir("gguf-lora") / f"{digest.hexdigest()[:24]}.gguf"
    if not out.is_file():
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        try:
            write_gguf_lora(folder, Path(base_gguf), tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out
