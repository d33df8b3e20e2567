"""A run's output folder: what may be written there, resuming, and what is saved at the end.

A finished run leaves the adapter (``adapter_model.safetensors``, ``adapter_config.json``), the
tokenizer, ``araft_train.yaml`` (the exact config), ``data.json`` (the records' sha256 and
counts), ``summary.json`` (wall time, samples/s), ``log.jsonl`` and ``loss.png``. An earlier
adapter is never overwritten without ``--overwrite``; ``--resume`` continues from the last
checkpoint of a run with the same records.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Optional

from araft_lc.storage.atomic_file import fsync_dir, write_text_atomically
from araft_lc.storage.write_error import writing
from finetune.config import ConfigError, TrainConfig, to_yaml

__all__ = ["prepare_output_dir", "last_checkpoint", "write_json", "save_run"]

CONFIG_NAME, DATA_NAME, SUMMARY_NAME = "araft_train.yaml", "data.json", "summary.json"


def last_checkpoint(output_dir: Path) -> Optional[Path]:
    """The newest whole ``checkpoint-N``: the Trainer writes ``trainer_state.json`` last, so a
    checkpoint without a readable one was cut short (a killed run) and is passed over."""
    checkpoints = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for checkpoint in sorted(checkpoints, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return checkpoint
    return None


def write_json(path: Path, data: Any) -> None:
    """Whole or absent (``araft_lc.storage.atomic_file``)."""
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def prepare_output_dir(
    config: TrainConfig, data_summary: dict[str, Any], *, overwrite: bool, resume: bool
) -> Optional[Path]:
    """Make ``config.output_dir`` ready and write ``data.json`` (the records' hash and counts)
    there; the checkpoint to resume from, if any.

    Raises:
        ConfigError: the folder holds an earlier run and neither flag says what to do with it,
            or ``--resume`` is asked of a run on other records. ``--resume`` without a whole
            checkpoint (a run killed before its first) starts from step 0.
    """
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume contradict each other: pass one")
    out = Path(config.output_dir)
    earlier = out.is_dir() and any(out.iterdir())
    if resume:
        saved = out / DATA_NAME
        if saved.is_file() and json.loads(saved.read_text())["sha256"] != data_summary["sha256"]:
            raise ConfigError(
                f"--resume: {out} was trained on other records than {config.data}; "
                "use another output_dir or --overwrite"
            )
        checkpoint = last_checkpoint(out) if earlier else None
        if checkpoint is None:
            # Killed before its first whole checkpoint (or never started): nothing to keep.
            print(f"--resume: no whole checkpoint in {out}; starting from step 0", file=sys.stderr)
        out.mkdir(parents=True, exist_ok=True)
    else:
        checkpoint = None
        if earlier:
            if not overwrite:
                raise ConfigError(
                    f"{out} holds an earlier run: pass --overwrite to replace it, or --resume to "
                    "continue from its last checkpoint"
                )
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    write_json(out / DATA_NAME, data_summary)
    return checkpoint


def save_run(trainer: Any, tokenizer: Any, config: TrainConfig, summary: dict[str, Any]) -> Path:
    """Save the adapter, the tokenizer, the config, the plot and, last, the summary (``data.json``
    is written before training, by ``prepare_output_dir``). Each file is whole or absent: the
    adapter and tokenizer are saved into ``.saving/`` first, fsynced, and renamed into place; a
    run without ``summary.json`` did not finish.

    Raises:
        WriteError: the disk is full or failing (``.saving/`` is removed).
    """
    from finetune.logs import plot_log

    out = Path(config.output_dir)
    staging = out / ".saving"
    with writing(out):
        shutil.rmtree(staging, ignore_errors=True)
        try:
            trainer.save_model(str(staging))
            tokenizer.save_pretrained(str(staging))
            names = sorted(p.name for p in staging.iterdir() if p.is_file())
            for name in names:
                fd = os.open(staging / name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for name in names:
                os.replace(staging / name, out / name)
            fsync_dir(out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    write_text_atomically(out / CONFIG_NAME, to_yaml(config))
    plot_log(str(out))
    write_json(out / SUMMARY_NAME, summary)
    return out
