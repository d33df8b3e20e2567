"""SFT of a LoRA adapter with TRL's ``SFTTrainer``, loss on the model's own steps only.

Records are tokenised by us (``finetune.tokens``) into ``input_ids`` and ``assistant_masks``,
which SFTTrainer takes as they are: the loss falls on the completion (prompt/completion records)
or on every assistant turn (trajectory records), never on the prompt or the observations.

    araft train sft --config finetune/configs/sft-smollm2.yaml [--key value ...]
    accelerate launch -m finetune.sft --config finetune/configs/sft.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from finetune.config import SFTRunConfig
from finetune.training import prepare, train_and_save, trl_args

__all__ = ["train_sft", "main"]


def train_sft(config: SFTRunConfig, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Train the adapter ``config`` describes; the output folder.

    Raises:
        ConfigError, DataError: a bad config or bad records, before any model is loaded.
    """
    p, _ = prepare(config, "sft", tokenizer_from=config.model, overwrite=overwrite, resume=resume)
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from finetune.logs import LossLog
    from finetune.model import load_base, lora_config

    trainer = SFTTrainer(
        model=load_base(config, p.device),
        args=SFTConfig(**trl_args(p)),
        train_dataset=Dataset.from_list(p.data.rows),
        processing_class=p.tokenizer,
        peft_config=lora_config(config),
        callbacks=[LossLog(config.output_dir)],
    )
    return train_and_save(trainer, p)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from finetune.launch import launch

    return launch("sft", train_sft, argv)


if __name__ == "__main__":
    sys.exit(main())
