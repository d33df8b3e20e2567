"""Teacher generation: run a teacher over questions, keep the correct trajectories.

The run's settings are saved beside the output (``OUT.settings.yaml``); a resumed output must have
been started with the same ones. Resumable: the question ids already in the output or rejects
file are skipped, a torn last line from a killed run is repaired, and each record is appended and
fsynced as its run finishes. One run at a time owns an output (``OUT.lock``); a failed write stops
the run with a ``WriteError``, and the same command, once the disk has room, finishes the rest,
every question once."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from araft_lc.agent.settings import RunSettings, save_settings
from araft_lc.react.trajectory import TrajectoryRecord
from araft_lc.storage.jsonl_sink import JsonlSink, read_ids
from araft_lc.storage.output_lock import output_lock
from evals.hotpotqa import Question, check_unique_ids
from evals.run_pool import run_pool
from evals.settings import generate_settings_path

__all__ = ["GenerationSummary", "generate", "rejects_path", "kept_by"]


@dataclass
class GenerationSummary:
    skipped: int  # already done by an earlier run
    tried: int
    kept: int
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.kept / self.tried if self.tried else 0.0


def rejects_path(out: Path) -> Path:
    return out.with_name(out.stem + ".rejects" + out.suffix)


def kept_by(
    questions: Sequence[Question], out: Path, keys: Sequence[str] = ("level", "type")
) -> dict[str, dict[str, tuple[int, int]]]:
    """Per key of ``keys`` (``level``, ``type``), kept and tried questions per value, from ``out``
    and its rejects (each read once): the whole output, resumed runs included. Questions not yet
    run are left out."""
    kept, rejected = read_ids(out), read_ids(rejects_path(out))
    counts: dict[str, dict[str, tuple[int, int]]] = {key: {} for key in keys}
    for q in questions:
        if q.id in kept or q.id in rejected:
            for key in keys:
                value = getattr(q, key) or "?"
                k, n = counts[key].get(value, (0, 0))
                counts[key][value] = (k + (q.id in kept), n + 1)
    return counts


def generate(
    agent: Any,
    questions: Sequence[Question],
    out: str | Path,
    *,
    min_f1: Optional[float] = None,
    concurrency: int = 1,
    retries: int = 2,
    producer: Optional[dict[str, Any]] = None,
    progress: bool = True,
    settings: Optional[RunSettings] = None,
) -> GenerationSummary:
    """Run ``agent`` over ``questions``; kept records go to ``out``, the rest to ``*.rejects.jsonl``.

    A run is kept when it answered with exact match (``min_f1`` None) or with F1 >= ``min_f1``.
    A run that raises is retried ``retries`` times, then written to the rejects as an error.
    ``settings``, when given, are saved as ``OUT.settings.yaml`` before any run; an output started
    with other settings is not resumed.

    Raises:
        ValueError: two questions share an id, or ``out`` is a folder.
        ConfigError: ``out`` was started with other ``settings``.
        OutputLocked: another run is writing ``out``.
        WriteError: a record could not be written (a full or failing disk); what was written
            before stays, whole.
    """
    out = Path(out)
    check_unique_ids(questions)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder: name the .jsonl file to write")
    with output_lock(out):
        if settings is not None:
            save_settings(settings, generate_settings_path(out), "generate")
        return _generate(
            agent,
            questions,
            out,
            min_f1=min_f1,
            concurrency=concurrency,
            retries=retries,
            producer=producer,
            progress=progress,
        )


def _generate(
    agent: Any,
    questions: Sequence[Question],
    out: Path,
    *,
    min_f1: Optional[float],
    concurrency: int,
    retries: int,
    producer: Optional[dict[str, Any]],
    progress: bool,
) -> GenerationSummary:
    rejects = rejects_path(out)
    done = read_ids(out) | read_ids(rejects)
    todo = [q for q in questions if q.id not in done]
    start = time.perf_counter()
    counts = {"kept": 0, "tried": 0}
    lock = threading.Lock()
    with JsonlSink(out) as kept_sink, JsonlSink(rejects) as reject_sink:

        def route(record: TrajectoryRecord) -> None:
            good = record.status == "answered" and (
                record.scores.get("em", 0.0) == 1.0 if min_f1 is None else record.scores.get("f1", 0.0) >= min_f1
            )
            (kept_sink if good else reject_sink).write(record)
            with lock:
                counts["tried"] += 1
                counts["kept"] += good

        def postfix() -> dict[str, str]:
            with lock:
                return {"kept": f"{counts['kept'] / max(1, counts['tried']):.0%}"}

        errors = run_pool(
            agent,
            todo,
            route,
            producer=producer,
            concurrency=concurrency,
            retries=retries,
            desc="generate" if progress else None,
            postfix=postfix,
        )
    return GenerationSummary(
        len(questions) - len(todo), counts["tried"], counts["kept"], errors, round(time.perf_counter() - start, 2)
    )
