"""DPO of the SFT adapter with TRL's ``DPOTrainer``.

The policy is the SFT adapter loaded trainable; the frozen reference is that same adapter (TRL
copies a pretrained PeftModel's adapter to ``ref`` when ``ref_model`` is None). ``max_length``
covers the whole prompt: the original kept only its last 128 tokens and so lost every question.
Records are tokenised by us (``finetune.tokens.dpo_tokens``) into the ``prompt_ids`` /
``chosen_ids`` / ``rejected_ids`` TRL's collator takes.

    araft train dpo --config finetune/configs/dpo-smollm2.yaml [--key value ...]
    accelerate launch -m finetune.dpo --config finetune/configs/dpo.yaml
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from finetune.config import ConfigError, DPORunConfig
from finetune.training import prepare, train_and_save, trl_args

__all__ = ["train_dpo", "main"]


def _tokenized_trainer() -> type:
    from trl import DPOTrainer

    from finetune.pair_tokens import counted_tokens_collator, differing_loss

    class TokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer on rows already tokenised the agent's way (any chat format, one BOS); rows
        that carry ``chosen_counted``/``rejected_counted`` (``pair_tokens: differing``) count
        only those tokens in the DPO term."""

        def __init__(self, *args: Any, counted: bool = False, **kwargs: Any) -> None:
            if counted:
                a, tok = kwargs["args"], kwargs["processing_class"]
                # finetune.tokens.load_tokenizer pads with EOS where the model has no pad token
                kwargs["data_collator"] = counted_tokens_collator(
                    pad_token_id=tok.pad_token_id,
                    max_length=a.max_length,
                    truncation_mode=a.truncation_mode,
                    pad_to_multiple_of=a.pad_to_multiple_of,
                )
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            return dataset

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            # transformers' Trainer.__init__ sets _signature_columns = None unannotated, so mypy types it None;
            # the super() call above has filled it with a list of column names
            self._signature_columns = [  # type: ignore[assignment]
                *self._signature_columns,  # type: ignore[misc]
                "chosen_counted",
                "rejected_counted",
            ]

        def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
            if "preference_mask" not in inputs:
                return super()._compute_loss(model, inputs, return_outputs)
            return differing_loss(self, model, inputs)

    return TokenizedDPOTrainer


def train_dpo(config: DPORunConfig, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Train the DPO adapter ``config`` describes; the output folder.

    Raises:
        ConfigError, DataError: a bad config, adapter or records, before the model is loaded.
    """
    adapter = Path(config.adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(f"adapter {adapter} has no adapter_config.json: train it with `araft train sft`")
    saved = adapter / "araft_train.yaml"
    if saved.is_file():
        import yaml

        from araft_lc.chat.model_spec import ModelSpec

        base = (yaml.safe_load(saved.read_text(encoding="utf-8")) or {}).get("model")
        # one base however it is spelled (a preset or its folder, hf:PATH or PATH)
        if base and ModelSpec.parse(str(base)).local_id != ModelSpec.parse(config.model).local_id:
            raise ConfigError(
                f"adapter {adapter} was trained on {base!r}, but model is {config.model!r}: pass --model {base}"
            )
    if config.max_parse_error_share is not None and not config.validation_size:
        raise ConfigError("max_parse_error_share needs held-out prompts: set validation_size (e.g. 20)")
    tokenizer_from = str(adapter) if (adapter / "tokenizer_config.json").is_file() else config.model
    p, held = prepare(
        config,
        "dpo",
        tokenizer_from=tokenizer_from,
        overwrite=overwrite,
        resume=resume,
        hold_out=config.validation_size,
    )
    from datasets import Dataset
    from trl import DPOConfig

    from finetune.format_check import FormatCheck
    from finetune.logs import LossLog
    from finetune.model import load_base
    from finetune.pair_tokens import with_differing_tokens

    model = load_base(config, p.device, adapter=str(adapter))
    callbacks: list[Any] = [LossLog(config.output_dir)]
    if held:
        # one prompt per held-out question, at a step drawn with the seed
        by_question: dict[str, list[dict[str, Any]]] = {}
        for row in held:
            by_question.setdefault(str(row.get("question_id")), []).append(row)
        rng = random.Random(config.seed)
        prompts = [rng.choice(rows)["prompt"] for _, rows in sorted(by_question.items())]
        callbacks.append(
            FormatCheck(p.tokenizer, prompts, config.output_dir, config.check_every, config.max_parse_error_share)
        )
    args = DPOConfig(
        **trl_args(p),
        beta=config.beta,
        loss_type=config.loss_type,
        loss_weights=config.loss_weights,
        precompute_ref_log_probs=config.precompute_ref_log_probs,
    )
    counted = config.pair_tokens == "differing"
    rows = [with_differing_tokens(r) for r in p.data.rows] if counted else p.data.rows
    trainer = _tokenized_trainer()(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=p.tokenizer,
        callbacks=callbacks,
        counted=counted,
    )
    return train_and_save(trainer, p)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from finetune.launch import launch

    return launch("dpo", train_dpo, argv)


if __name__ == "__main__":
    sys.exit(main())
