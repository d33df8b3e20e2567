"""SFT of a LoRA adapter with TRL's ``SFTTrainer``, loss on the model's own steps only.

Records are tokenised by us (``finetune.tokens``) into ``input_ids`` and ``assistant_masks``,
which SFTTrainer takes as they are: the loss falls on the completion (prompt/completion records)
or on every assistant turn (trajectory records), never on the prompt or the observations. On one
process the LM head runs on those target positions only (``finetune.target_loss``); the logs keep
TRL's ``mean_token_accuracy`` and ``num_tokens``, not its per-position entropy.

    araft train sft --config finetune/configs/sft-smollm2.yaml [--key value ...]
    accelerate launch -m finetune.sft --config finetune/configs/sft.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

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

    trainer = _targets_only(SFTTrainer)(
        model=load_base(config, p.device),
        args=SFTConfig(**trl_args(p)),
        train_dataset=Dataset.from_list(p.data.rows),
        processing_class=p.tokenizer,
        peft_config=lora_config(config),
        callbacks=[LossLog(config.output_dir)],
    )
    return train_and_save(trainer, p)


def _targets_only(base: Any) -> Any:
    """``base`` (TRL's SFTTrainer) with the LM head on target positions only, where one process
    trains; under several (DDP) the model must be called through its wrapper, so TRL's own loss runs."""
    from finetune.target_loss import target_loss

    class TargetsOnlySFTTrainer(base):
        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            if return_outputs or self.accelerator.num_processes > 1 or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            out = target_loss(model, inputs, num_items_in_batch)
            mode = "train" if model.training else "eval"
            self._metrics[mode]["mean_token_accuracy"].append(float(out.top1) / max(1, int(out.targets)))
            if mode == "train":
                tokens = inputs["attention_mask"].sum() if "attention_mask" in inputs else inputs["input_ids"].numel()
                self._total_train_tokens += int(tokens)
                self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return out.loss

    return TargetsOnlySFTTrainer


def main(argv: Optional[Sequence[str]] = None) -> int:
    from finetune.launch import launch

    return launch("sft", train_sft, argv)


if __name__ == "__main__":
    sys.exit(main())
