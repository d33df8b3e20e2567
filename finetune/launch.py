"""The training command line, shared by ``araft train sft|dpo`` and ``python -m finetune.sft|dpo``
(so ``accelerate launch -m finetune.sft`` runs the same thing on several GPUs).

The trainer comes in as a function (``finetune.sft.train_sft``, ``finetune.dpo.train_dpo``): the
trainers import this module for their ``main``, never the other way round."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Optional, Sequence

from finetune.config import DPORunConfig, SFTRunConfig, TrainConfig, config_help, load_config, parse_overrides

__all__ = ["launch", "run", "add_train_arguments", "Trainer"]

CONFIGS: dict[str, type[TrainConfig]] = {"sft": SFTRunConfig, "dpo": DPORunConfig}

# train_sft / train_dpo: (config, *, overwrite, resume) -> the output folder
Trainer = Callable[..., Path]


def add_train_arguments(parser: argparse.ArgumentParser, stage: str) -> None:
    parser.add_argument("--config", help="a YAML config (finetune/configs/*.yaml); --key value overrides it")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in output_dir")
    parser.add_argument("--resume", action="store_true", help="continue from output_dir's last checkpoint")
    parser.epilog = "config keys (all may be overridden as --key value):\n" + config_help(CONFIGS[stage])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(stage: str, train: Trainer, args: argparse.Namespace, overrides: Sequence[str]) -> int:
    """Train with ``train``, the stage's trainer; config and data errors raise
    ConfigError/DataError (ValueError) for the caller, a failed write WriteError, an output_dir
    another run holds OutputLocked (both OSError)."""
    from araft_lc.storage.output_lock import output_lock

    config = load_config(CONFIGS[stage], args.config, parse_overrides(overrides))
    # One run per output_dir: the lock sits beside it (--overwrite removes the folder). Under
    # accelerate every rank runs this; the main one holds the lock for all.
    main_rank = os.environ.get("RANK", "0") == "0"
    with output_lock(config.output_dir) if main_rank else nullcontext():
        train(config, overwrite=args.overwrite, resume=args.resume)
    return 0


def launch(stage: str, train: Trainer, argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m finetune.{stage}")
    add_train_arguments(parser, stage)
    args, overrides = parser.parse_known_args(argv)
    try:
        return run(stage, train, args, overrides)
    except ValueError as e:
        print(f"finetune.{stage}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full or read-only disk, an output_dir another run holds
        print(f"finetune.{stage}: error: {e}", file=sys.stderr)
        return 1
