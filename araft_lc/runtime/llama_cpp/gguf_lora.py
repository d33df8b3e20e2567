"""A PEFT LoRA adapter for llama.cpp, written once into the cache: as a llama.cpp adapter, or
merged into a copy of the base GGUF.

llama.cpp applies a GGUF adapter at run time, ``W x + (alpha / r) B (A x)``, over the base model's
own quantised weights, as peft does over ours; its small matrix products cost a decode step of
SmolLM2-135M about as much again as the model (benchmarks/RESULTS.md). Merged, each adapted
weight is dequantised, gets ``(alpha / r) B A`` added, and is quantised again as Q8_0 (8 bits
with a scale per 32 weights: the merged weights are no longer on Q4_1's 16 levels, and Q8_0 keeps
the adapter's small changes that 4 bits would round away). The adapter file holds, per adapted
linear layer, PEFT's
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

__all__ = ["GGUFAdapterError", "gguf_lora", "read_safetensors", "write_gguf_lora", "write_merged_gguf"]

_FORMAT = 1  # bump when the written file changes, so cached conversions are made again
_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


class GGUFAdapterError(ValueError):
    """An adapter that llama.cpp cannot run as it is."""


def _permute(weights: Any, heads: int) -> Any:
    """The rows of a query/key projection in llama.cpp's rotary order (its converter's ``permute``)."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


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


_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}


def read_safetensors(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file as float32 numpy arrays (bf16 widened), read without
    torch: an 8-byte header length, a JSON header of dtype, shape and byte offsets, the data.

    Raises:
        GGUFAdapterError: the file is cut short, or not safetensors of float tensors.
    """
    import numpy as np

    data = path.read_bytes()
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size])
        if len(data) < 8 + size or not isinstance(header, dict):
            raise ValueError("header cut short")
    except ValueError as e:  # JSON errors are ValueErrors too
        raise GGUFAdapterError(f"{path} is not a readable safetensors file ({e}): save the adapter again") from None
    body = memoryview(data)[8 + size :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
            dtype, shape = info["dtype"], info["shape"]
        except (KeyError, TypeError, ValueError):
            raise GGUFAdapterError(
                f"{path}: tensor {name!r} has no dtype, shape and offsets: save the adapter again"
            ) from None
        if dtype not in _DTYPES:
            raise GGUFAdapterError(f"{path}: tensor {name!r} is {dtype}, not a float type an adapter has")
        if end > len(body) or end - start != np.dtype(_DTYPES[dtype]).itemsize * math.prod(shape):
            raise GGUFAdapterError(
                f"{path} is cut short or damaged (tensor {name!r} does not fit the file): "
                "save or copy the adapter again"
            )
        array = np.frombuffer(body[start:end], dtype=_DTYPES[dtype])
        if dtype == "BF16":  # the high half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array.astype(np.float32).reshape(shape)
    return tensors


def _lora_pairs(adapter_dir: Path, base_gguf: Path) -> tuple[dict[str, tuple[Any, Any]], float]:
    """The adapter's ``(A, B)`` per GGUF weight name (``B`` in llama.cpp's row order) and its alpha.

    Raises:
        GGUFAdapterError: the adapter is not a plain LoRA on a Llama's linear layers.
    """
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except ValueError as e:
        raise GGUFAdapterError(
            f"{adapter_dir / 'adapter_config.json'} is not JSON ({e}): save the adapter again"
        ) from None
    if (
        config.get("peft_type") != "LORA"
        or config.get("use_dora")
        or config.get("modules_to_save")
        or config.get("rank_pattern")
        or config.get("alpha_pattern")
    ):
        raise GGUFAdapterError(
            f"{adapter_dir} is not a plain LoRA (DoRA, saved modules or per-module ranks): "
            "llama.cpp runs plain LoRA adapters; use the torch backend"
        )
    try:
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
    except (KeyError, TypeError, ValueError):
        raise GGUFAdapterError(
            f"{adapter_dir / 'adapter_config.json'} names no rank r and lora_alpha: save the adapter again"
        ) from None
    if config.get("use_rslora"):  # peft scales by alpha / sqrt(r), llama.cpp by alpha / r
        alpha *= math.sqrt(rank)
    heads, kv_heads = _heads(base_gguf)
    found: dict[str, dict[str, Any]] = {}
    for name, tensor in read_safetensors(adapter_dir / "adapter_model.safetensors").items():
        # base_model.model.model.layers.N.<module>.lora_A.weight
        parts = name.split(".")
        if "layers" not in parts or parts[-2] not in ("lora_A", "lora_B"):
            raise GGUFAdapterError(
                f"{adapter_dir}: tensor {name!r} is not a LoRA matrix of a decoder layer; use the torch backend"
            )
        layer = int(parts[parts.index("layers") + 1])
        module = ".".join(parts[parts.index("layers") + 2 : -2])
        if module not in _NAMES:
            raise GGUFAdapterError(
                f"{adapter_dir}: LoRA on {module!r}, which llama.cpp adapters do not name; use the torch backend"
            )
        found.setdefault(f"blk.{layer}.{_NAMES[module]}.weight", {})[parts[-2]] = tensor
    pairs = {}
    for name, pair in found.items():
        a, b = pair["lora_A"], pair["lora_B"]
        if ".attn_q." in name:
            b = _permute(b, heads)
        elif ".attn_k." in name:
            b = _permute(b, kv_heads)
        pairs[name] = (a, b)
    return pairs, alpha


def write_gguf_lora(adapter_dir: Path, base_gguf: Path, out: Path) -> None:
    """Write ``adapter_dir`` (a PEFT LoRA folder) as a llama.cpp adapter for ``base_gguf`` at ``out``.

    Raises:
        GGUFAdapterError: the adapter is not a plain LoRA on a Llama's linear layers.
    """
    import numpy as np
    from gguf import GGUFType, GGUFWriter, Keys

    pairs, alpha = _lora_pairs(adapter_dir, base_gguf)
    writer = GGUFWriter(str(out), "llama")
    writer.add_type(GGUFType.ADAPTER)
    writer.add_string(Keys.Adapter.TYPE, "lora")
    writer.add_float32(Keys.Adapter.LORA_ALPHA, alpha)
    for name in sorted(pairs):
        a, b = pairs[name]
        writer.add_tensor(name + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))
    _finish(writer)


def write_merged_gguf(adapter_dir: Path, base_gguf: Path, out: Path) -> None:
    """Write ``base_gguf`` with ``adapter_dir`` merged into its weights at ``out``: each adapted
    weight dequantised, ``(alpha / r) B A`` added, quantised as Q8_0; the rest copied as it is.

    Raises:
        GGUFAdapterError: the adapter is not a plain LoRA on a Llama's linear layers.
    """
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize, quantize

    pairs, alpha = _lora_pairs(adapter_dir, base_gguf)
    reader = GGUFReader(str(base_gguf))
    writer = GGUFWriter(str(out), "llama")
    for key, item in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue  # the writer's own, and the file type, which is mixed now
        kind = item.types[0]
        writer.add_key_value(key, item.contents(), kind, item.types[-1] if kind == GGUFValueType.ARRAY else None)
    q8 = GGMLQuantizationType.Q8_0
    for tensor in reader.tensors:
        if tensor.name not in pairs:
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
            continue
        a, b = pairs.pop(tensor.name)
        weight = dequantize(tensor.data, tensor.tensor_type) + (alpha / a.shape[0]) * (b @ a)
        writer.add_tensor(tensor.name, quantize(weight.astype("float32"), q8), raw_dtype=q8)
    if pairs:
        raise GGUFAdapterError(
            f"{adapter_dir} adapts {sorted(pairs)[0]}, which {base_gguf.name} does not have: "
            "is it this model's adapter?"
        )
    _finish(writer)


def _finish(writer: Any) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def gguf_lora(adapter_dir: str, base_gguf: str, merged: bool = False) -> Path:
    """``adapter_dir`` converted for ``base_gguf``: a llama.cpp adapter (``write_gguf_lora``), or
    with ``merged`` the base with it merged in (``write_merged_gguf``); made once per content into
    the cache (``$ARAFT_CACHE_DIR/gguf-lora``) and reused.

    Raises:
        GGUFAdapterError: the adapter is not a local PEFT LoRA folder llama.cpp can run.
    """
    folder = Path(adapter_dir).expanduser()
    if not (folder / "adapter_config.json").is_file() or not (folder / "adapter_model.safetensors").is_file():
        raise GGUFAdapterError(
            f"{adapter_dir} is not a local PEFT adapter folder (adapter_config.json and "
            "adapter_model.safetensors): llama.cpp needs one; use the torch backend"
        )
    base = Path(base_gguf)
    digest = hashlib.sha256(f"{_FORMAT}:{merged}:{base.name}:{base.stat().st_size}".encode())
    for part in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((folder / part).read_bytes())
    out = cache_dir("gguf-lora") / f"{digest.hexdigest()[:24]}{'-merged' if merged else ''}.gguf"
    if not out.is_file():
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        try:
            (write_merged_gguf if merged else write_gguf_lora)(folder, base, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out
