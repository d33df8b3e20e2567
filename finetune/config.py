"""Training configs: dataclasses whose fields carry their help, one YAML file per run.

``load_config(cls, path, overrides)`` reads the YAML file, applies ``--key value`` overrides from
the command line (values parsed as YAML: ``--lora_r 8``, ``--target_modules all-linear``,
``--loss_type '[sigmoid, sft]'``) and checks every key: an unknown one is named with the nearest
valid key. ``to_yaml`` writes the exact config a run used, beside its adapter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Optional, Sequence, TypeVar, Union

import yaml

from araft_lc.chat.presets import LLAMA2_CHAT
from araft_lc.storage.config_file import ConfigError, checked_values, field_default, read_config
from araft_lc.storage.config_file import config_field as _f

__all__ = ["ConfigError", "TrainConfig", "SFTRunConfig", "DPORunConfig", "load_config", "to_yaml", "config_help"]


@dataclass
class TrainConfig:
    """What both stages share: the model, the data, LoRA, the optimiser, logging."""

    data: str = _f("", "the training records (JSONL from `araft convert`)")
    output_dir: str = _f("", "where the adapter, tokenizer, config, data hash and loss logs go")
    model: str = _f(LLAMA2_CHAT, "the base model: a preset (smollm2-135m), a Hub id or a local folder")
    load_in_4bit: bool = _f(
        True, "QLoRA: load the base in 4-bit NF4 with double quantisation and bf16 compute (bitsandbytes, CUDA only)"
    )
    lora_r: int = _f(16, "LoRA rank (SFT; DPO keeps the SFT adapter's shape)")
    lora_alpha: int = _f(32, "LoRA alpha, the scale is alpha/r (SFT)")
    lora_dropout: float = _f(0.05, "LoRA dropout (SFT)")
    target_modules: Union[str, list[str]] = _f(
        ["q_proj", "v_proj"],
        "the modules LoRA adapts (SFT): a list, or all-linear (the original: PEFT's Llama default q_proj, v_proj)",
    )
    learning_rate: float = _f(2e-4, "peak learning rate")
    num_train_epochs: float = _f(1.0, "epochs over the records")
    max_steps: int = _f(-1, "stop after this many optimiser steps (-1: run the epochs)")
    per_device_train_batch_size: int = _f(1, "records per device per forward pass")
    gradient_accumulation_steps: int = _f(4, "forward passes per optimiser step")
    lr_scheduler_type: str = _f("linear", "learning-rate schedule (transformers SchedulerType)")
    warmup_ratio: float = _f(0.1, "share of the steps spent warming up (below 1)")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    max_length: Optional[int] = _f(None, "longest sequence in tokens (null: the longest record)")
    too_long: str = _f("drop", "records longer than max_length: drop (and count them) or fail; never cut")
    gradient_checkpointing: bool = _f(
        False, "recompute activations (GPU only: slower on CPU and breaks trl 1.16 there)"
    )
    bf16: Optional[bool] = _f(None, "bf16 mixed precision (null: on where CUDA supports it, off on CPU)")
    use_cpu: bool = _f(False, "train on the CPU even when CUDA is present")
    seed: int = _f(42, "random seed")
    logging_steps: int = _f(1, "log the loss every N optimiser steps")
    save_steps: int = _f(50, "checkpoint every N optimiser steps (resume with --resume)")
    save_total_limit: int = _f(2, "checkpoints kept")
    trl: dict[str, Any] = _f({}, "further TRL config arguments, passed as they are")


@dataclass
class SFTRunConfig(TrainConfig):
    """SFT of a fresh LoRA adapter on prompt/completion, messages or text records."""


@dataclass
class DPORunConfig(TrainConfig):
    """DPO from a trained SFT adapter: the policy starts from it and the frozen reference is it."""

    adapter: str = _f("", "the SFT adapter folder to start from (and to use as the frozen reference)")
    beta: float = _f(0.1, "DPO beta: how far the policy may move from the reference")
    loss_type: list[str] = _f(
        ["sigmoid"],
        "TRL DPO loss types, e.g. [sigmoid, sft]: sft adds the chosen "
        "step's NLL, which keeps a small model's action format",
    )
    loss_weights: Optional[list[float]] = _f(None, "a weight per loss_type (null: all 1)")
    precompute_ref_log_probs: bool = _f(False, "compute the reference log-probs once before training")
    pair_tokens: str = _f(
        "all",
        "the tokens of a pair the DPO term counts: all (TRL's DPO), or differing: "
        "only where the chosen and rejected steps differ (the sft loss type still "
        "covers the whole chosen step)",
    )
    validation_size: int = _f(
        0, "hold out this many questions' DPO records; check the action format on one prompt of each"
    )
    max_parse_error_share: Optional[float] = _f(
        None, "stop early when greedy steps on the held-out prompts fail to parse more often than this"
    )
    check_every: int = _f(10, "optimiser steps between format checks")


C = TypeVar("C", bound=TrainConfig)


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """``["--lora_r", "8", "--use_cpu"]`` -> ``{"lora_r": 8, "use_cpu": True}`` (values as YAML)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"expected --key value, got {arg!r}")
        key, eq, text = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                text, i = args[i + 1], i + 1
            else:
                text = "true"
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            out[key] = text
        i += 1
    return out


def load_config(cls: type[C], path: Optional[str], overrides: Optional[dict[str, Any]] = None) -> C:
    """The config of ``cls`` from a YAML file (or none) and overrides.

    Raises:
        ConfigError: an unreadable file, an unknown key, a value of the wrong type, a missing
            required value (``data``, ``output_dir``; ``adapter`` for DPO).
    """
    data = read_config(path) if path else {}
    overrides = overrides or {}
    data.update(overrides)

    def where(key: str) -> str:
        """The file a key's value came from, to name in an error (not for a --key override)."""
        return f"{path}: " if path and key not in overrides else ""

    return _build(cls, data, where)


def _build(cls: type[C], data: dict[str, Any], where: Callable[[str], str]) -> C:
    values = checked_values(cls, data, where)
    config = cls(**values)
    required = ["data", "output_dir"] + (["adapter"] if cls is DPORunConfig else [])
    for key in required:
        if not getattr(config, key):
            raise ConfigError(f"{where(key)}{key} is not set: put it in the config file or pass --{key} VALUE")
    if not 0 <= config.warmup_ratio < 1:
        raise ConfigError(
            f"{where('warmup_ratio')}warmup_ratio: {config.warmup_ratio} is not a share of the steps in [0, 1)"
        )
    if isinstance(config, DPORunConfig):
        _check_pair_tokens(config, where)
    if config.too_long not in ("drop", "fail"):
        raise ConfigError(f"{where('too_long')}too_long: {config.too_long!r} is not drop or fail")
    return config


def _check_pair_tokens(config: DPORunConfig, where: Callable[[str], str]) -> None:
    from finetune.pair_tokens import PAIR_TOKEN_LOSSES, PAIR_TOKENS

    if config.pair_tokens not in PAIR_TOKENS:
        raise ConfigError(
            f"{where('pair_tokens')}pair_tokens: {config.pair_tokens!r} is not {' or '.join(PAIR_TOKENS)}"
        )
    if config.pair_tokens != "differing":
        return
    other = [t for t in config.loss_type if t not in PAIR_TOKEN_LOSSES]
    if other:
        raise ConfigError(
            f"{where('loss_type')}pair_tokens differing computes the loss types "
            f"{', '.join(PAIR_TOKEN_LOSSES)}, not {', '.join(other)}: drop them or set pair_tokens all"
        )
    if config.precompute_ref_log_probs:
        raise ConfigError(
            f"{where('precompute_ref_log_probs')}pair_tokens differing computes the reference "
            "log-probs as it trains: set precompute_ref_log_probs false"
        )


def to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(asdict(config), sort_keys=False)


def config_help(cls: type[TrainConfig]) -> str:
    """Every key of ``cls`` with its default and help, for ``araft train ... --help``."""
    lines = []
    for f in fields(cls):
        lines.append(f"  --{f.name} (default: {field_default(f)!r})\n      {f.metadata['help']}")
    return "\n".join(lines)
