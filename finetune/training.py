"""What SFT and DPO runs share: checking the config against the machine, reading and tokenising
the records, the TRL arguments both stages take, and training with progress, resume and saving."""

from __future__ import annotations

import errno
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from finetune.config import ConfigError, TrainConfig
from finetune.dataset import TokenizedData, read_records, tokenize_records
from finetune.model import Device, resolve_device
from finetune.outputs import last_checkpoint, prepare_output_dir, save_run
from finetune.tokens import load_tokenizer

__all__ = ["Prepared", "prepare", "trl_args", "train_and_save"]


@dataclass
class Prepared:
    """A run ready to train: where, with what tokenizer and which rows."""

    config: TrainConfig
    device: Device
    tokenizer: Any
    data: TokenizedData
    resume_from: Optional[Path]


def prepare(
    config: TrainConfig, stage: str, *, tokenizer_from: str, overwrite: bool, resume: bool, hold_out: int = 0
) -> tuple[Prepared, list[dict[str, Any]]]:
    """Check everything that can fail before a model is loaded; beside it, the records of
    ``hold_out`` questions drawn with the config's seed, kept out of training."""
    device = resolve_device(config)
    rows, sha = read_records(config.data, stage)
    # held out by question, so no held-out prompt is trained on, even for another step
    questions = sorted({str(r.get("question_id", i)) for i, r in enumerate(rows)})
    if hold_out >= len(questions):
        raise ConfigError(f"validation_size {hold_out} leaves no questions to train on (there are {len(questions)})")
    picked = set(random.Random(config.seed).sample(questions, hold_out))
    held = [r for i, r in enumerate(rows) if str(r.get("question_id", i)) in picked]
    rows = [r for i, r in enumerate(rows) if str(r.get("question_id", i)) not in picked]
    tokenizer = load_tokenizer(tokenizer_from)
    data = tokenize_records(tokenizer, rows, sha, config.max_length, config.too_long)
    resume_from = prepare_output_dir(config, data.summary(), overwrite=overwrite, resume=resume)
    where = "CUDA" + (" bf16" if device.bf16 else "") if device.cuda else "CPU"
    print(
        f"{stage}: {len(data.rows)} records ({data.dropped} dropped as longer than {data.max_length} "
        f"tokens, longest {data.longest}) on {where}" + (f", resuming from {resume_from}" if resume_from else ""),
        file=sys.stderr,
        flush=True,
    )
    return Prepared(config, device, tokenizer, data, resume_from), held


def trl_args(p: Prepared) -> dict[str, Any]:
    """The TRL config arguments SFT and DPO share."""
    c = p.config
    return {
        "output_dir": c.output_dir,
        "learning_rate": c.learning_rate,
        "num_train_epochs": c.num_train_epochs,
        "max_steps": c.max_steps,
        "per_device_train_batch_size": c.per_device_train_batch_size,
        "gradient_accumulation_steps": c.gradient_accumulation_steps,
        "lr_scheduler_type": c.lr_scheduler_type,
        # transformers 5 takes a ratio of the steps as a float below 1 in warmup_steps
        "warmup_steps": c.warmup_ratio,
        "weight_decay": c.weight_decay,
        "seed": c.seed,
        "logging_steps": c.logging_steps,
        "save_steps": c.save_steps,
        "save_total_limit": c.save_total_limit,
        # transformers 5.24 renamed gradient_checkpointing (our config keeps the familiar name)
        "activation_checkpointing": c.gradient_checkpointing,
        "bf16": p.device.bf16,
        "use_cpu": not p.device.cuda,
        "max_length": p.data.max_length,
        "report_to": "none",
        "disable_tqdm": False,
        **c.trl,
    }


_NEARLY_FULL = 1 << 20  # bytes free below which a failed checkpoint save is put down to a full disk


def _saving_a_checkpoint(e: BaseException) -> bool:
    """True when ``e`` was raised while the Trainer wrote a checkpoint (torch.save on a full disk
    raises a RuntimeError without an errno)."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "_save_checkpoint":
            return True
        tb = tb.tb_next
    return False


def _drop_torn_checkpoints(output_dir: Path) -> None:
    """Remove the checkpoints newer than the last whole one (cut short by a failed write):
    ``--resume`` would pass over them, and they hold space the next try needs."""
    whole = last_checkpoint(output_dir)
    newest = int(whole.name.split("-")[-1]) if whole else -1
    for p in output_dir.glob("checkpoint-*"):
        if p.name.split("-")[-1].isdigit() and int(p.name.split("-")[-1]) > newest:
            shutil.rmtree(p, ignore_errors=True)


def train_and_save(trainer: Any, p: Prepared) -> Path:
    """Train (from the checkpoint when resuming) and save everything beside the adapter.

    Raises:
        WriteError: a checkpoint, the log or the adapter could not be written (a full or failing
            disk); the torn checkpoint is removed, so ``--resume`` goes on from the last whole one.
    """
    from araft_lc.storage.write_error import WriteError, is_write_failure

    start = time.perf_counter()
    out = Path(p.config.output_dir)
    try:
        result = trainer.train(resume_from_checkpoint=str(p.resume_from) if p.resume_from else None)
    except Exception as e:
        if not (is_write_failure(e) or _saving_a_checkpoint(e)):
            raise
        _drop_torn_checkpoints(out)
        if isinstance(e, WriteError):
            raise
        free = shutil.disk_usage(out).free
        if free < _NEARLY_FULL and not is_write_failure(e):
            # torch.save says only "unexpected pos ..." when the disk fills: name the cause it hides
            cause: BaseException = OSError(
                errno.ENOSPC,
                f"No space left on device ({free} bytes free; {type(e).__name__} while saving a checkpoint)",
            )
        else:
            cause = e
        raise WriteError(out, cause) from e
    seconds = time.perf_counter() - start
    metrics = dict(result.metrics)
    summary = {
        "seconds": round(seconds, 1),
        "records": len(p.data.rows),
        "samples_per_second": metrics.get("train_samples_per_second"),
        "steps": trainer.state.global_step,
        "final_loss": metrics.get("train_loss"),
        "device": "cuda" if p.device.cuda else "cpu",
        "resumed_from": str(p.resume_from or "") or None,
    }
    # a callback that stopped the run and put earlier weights back (the DPO format check) says which
    restored = [
        cb.restored_step for cb in trainer.callback_handler.callbacks if getattr(cb, "restored_step", None) is not None
    ]
    summary["weights_from_step"] = restored[0] if restored else summary["steps"]
    out = save_run(trainer, p.tokenizer, p.config, summary)
    kept = f" (the adapter holds step {restored[0]}'s weights)" if restored else ""
    print(
        f"saved {out}: {summary['steps']} steps{kept} in {seconds:.0f} s "
        f"({summary['samples_per_second']} samples/s), train loss {summary['final_loss']}",
        file=sys.stderr,
    )
    return out
