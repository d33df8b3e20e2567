"""The base model and LoRA for training: QLoRA on CUDA, plain LoRA on a CPU.

CPU facts measured with trl 1.16: bf16 must be off and gradient checkpointing off (both fail or
crawl there), so the CPU path sets them; a CUDA-only option asked on a CPU is an error up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from finetune.config import ConfigError, TrainConfig

__all__ = ["Device", "resolve_device", "load_base", "lora_config"]


@dataclass(frozen=True)
class Device:
    """Where a run trains and with what precision."""

    cuda: bool
    bf16: bool


def resolve_device(config: TrainConfig) -> Device:
    """Check the config against the machine. Raises ConfigError for CUDA-only options on a CPU."""
    import torch

    cuda = torch.cuda.is_available() and not config.use_cpu
    if not cuda:
        asked = [
            name
            for name, on in (
                ("load_in_4bit", config.load_in_4bit),
                ("bf16", config.bf16),
                ("gradient_checkpointing", config.gradient_checkpointing),
            )
            if on
        ]
        if asked:
            raise ConfigError(
                f"{', '.join(asked)} need{'s' if len(asked) == 1 else ''} CUDA and this run is on "
                f"the CPU: pass {' '.join(f'--{a} false' for a in asked)} (or use a *-smollm2.yaml config)"
            )
        return Device(False, False)
    bf16 = torch.cuda.is_bf16_supported() if config.bf16 is None else config.bf16
    return Device(True, bf16)


def load_base(config: TrainConfig, device: Device, adapter: Optional[str] = None) -> Any:
    """The base causal LM: 4-bit NF4 (double quant, bf16 compute) when asked, else full precision;
    with ``adapter`` (a LoRA folder) loaded trainable on top.

    Raises:
        ModelLoadError: (a ValueError) the model or the adapter cannot be loaded, naming which and why.
    """
    import torch

    from araft_lc.chat.model_spec import ModelSpec
    from araft_lc.runtime.torch.causal_lm import load_causal_lm

    model = load_causal_lm(
        ModelSpec.parse(config.model).local_id,
        adapters=adapter,
        quantize_4bit=config.load_in_4bit,
        dtype=torch.bfloat16 if device.cuda and device.bf16 else torch.float32,
        trainable=True,
    )
    model.config.use_cache = False
    return model


def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
