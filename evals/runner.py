"""``araft eval``: the agent over a sample of HotpotQA questions, every run recorded.

Writes ``DIR/trajectories.jsonl`` (the same records as distillation, one per question and
repeat, appended and fsynced as each run ends), then ``DIR/report.md``, ``report.json`` and
``report.png``, and ``DIR/settings.yaml`` (what ``araft eval --config`` reads to run it again).
Resumable like ``araft generate``: started again with the same settings, it skips the (question,
repeat) runs already written; other settings (but the ``RESUMABLE`` ones) are refused.
``repeats`` runs the sample R times with seeds ``seed``, ``seed + 1``, ... (sampling only makes
sense with temperature > 0). One run at a time owns a folder (``DIR.lock`` beside it); a failed
write stops the run with a ``WriteError``, and the same command, once the disk has room, finishes the rest.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from araft_lc.agent.settings import RunSettings, save_settings
from araft_lc.react.trajectory import TrajectoryRecord, read_trajectories
from araft_lc.storage.jsonl_sink import JsonlSink, read_ids, repair_tail
from araft_lc.storage.output_lock import output_lock
from araft_lc.storage.write_error import writing
from evals.hotpotqa import Question, check_unique_ids
from evals.run_pool import run_pool
from evals.settings import SETTINGS

__all__ = ["EvalSummary", "evaluate", "run_key", "read_records", "check_out_dir", "TRAJECTORIES"]

TRAJECTORIES = "trajectories.jsonl"


@dataclass
class EvalSummary:
    skipped: int
    tried: int
    errors: int
    seconds: float


def run_key(record: dict[str, Any]) -> str:
    return f"{record['question_id']}#{(record.get('producer') or {}).get('repeat', 0)}"


def check_out_dir(out_dir: str | Path) -> None:
    """Refuse an ``--out`` that is a file: a run writes a folder there."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: araft eval writes a folder there; choose another --out")


def read_records(out_dir: str | Path) -> list[TrajectoryRecord]:
    """Every whole record of ``DIR/trajectories.jsonl`` (a torn last line is repaired first)."""
    path = Path(out_dir) / TRAJECTORIES
    if not path.is_file():
        raise ValueError(f"{out_dir} holds no {TRAJECTORIES}: run `araft eval --out {out_dir}` first")
    repair_tail(path)
    return list(read_trajectories(path))


def evaluate(
    agent_for_repeat: Callable[[int], Any],
    questions: Sequence[Question],
    out_dir: str | Path,
    *,
    repeats: int = 1,
    concurrency: int = 1,
    retries: int = 2,
    producer: Optional[dict[str, Any]] = None,
    progress: bool = True,
    settings: Optional[RunSettings] = None,
) -> EvalSummary:
    """Run the agent ``agent_for_repeat(r)`` builds on every question, for each repeat r.

    ``settings``, when given, are saved as ``DIR/settings.yaml`` before any run; a folder started
    with other settings is not resumed.

    Raises:
        ValueError: two questions share an id, or ``out_dir`` is a file.
        ConfigError: ``out_dir`` was started with other ``settings``.
        OutputLocked: another run is writing ``out_dir``.
        WriteError: a record could not be written (a full or failing disk).
    """
    out = Path(out_dir)
    check_unique_ids(questions)
    check_out_dir(out)
    with output_lock(out):
        return _evaluate(
            agent_for_repeat,
            questions,
            out,
            repeats=repeats,
            concurrency=concurrency,
            retries=retries,
            producer=producer,
            progress=progress,
            settings=settings,
        )


def _evaluate(
    agent_for_repeat: Callable[[int], Any],
    questions: Sequence[Question],
    out: Path,
    *,
    repeats: int,
    concurrency: int,
    retries: int,
    producer: Optional[dict[str, Any]],
    progress: bool,
    settings: Optional[RunSettings],
) -> EvalSummary:
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    if settings is not None:
        save_settings(settings, out / SETTINGS, "eval")
    path = out / TRAJECTORIES
    done = read_ids(path, key=run_key)
    start = time.perf_counter()
    counts = {"tried": 0, "errors": 0, "skipped": 0}
    f1_sum = 0.0  # of the records written, for the progress bar
    lock = threading.Lock()
    with JsonlSink(path) as sink:

        def write(record: TrajectoryRecord) -> None:
            nonlocal f1_sum
            sink.write(record)
            with lock:
                counts["tried"] += 1
                f1_sum += record.scores.get("f1", 0.0)

        def postfix() -> dict[str, str]:
            with lock:
                return {"F1": f"{100 * f1_sum / max(1, counts['tried']):.1f}"}

        for repeat in range(repeats):
            todo = [q for q in questions if f"{q.id}#{repeat}" not in done]
            counts["skipped"] += len(questions) - len(todo)
            if not todo:
                continue
            desc = f"eval {repeat + 1}/{repeats}" if progress else None
            counts["errors"] += run_pool(
                agent_for_repeat(repeat),
                todo,
                write,
                producer={**(producer or {}), "repeat": repeat},
                concurrency=concurrency,
                retries=retries,
                desc=desc,
                postfix=postfix,
            )
    summary = EvalSummary(counts["skipped"], counts["tried"], counts["errors"], round(time.perf_counter() - start, 2))
    if summary.errors:
        print(f"{summary.errors} runs ended as errors (status error in {path})", file=sys.stderr)
    return summary
