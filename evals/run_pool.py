"""Run an agent over many questions: bounded concurrency, bounded retries, a progress bar.

Shared by teacher generation (``araft generate``) and evaluation (``araft eval``). Each finished
run's trajectory record, which a ``TrajectoryRecorder`` rebuilt from callbacks and scored with
``evals.metrics.score`` (EM and F1 against the gold answer), reaches ``on_record`` from the
worker, after the run and outside every callback (LangChain would log and swallow an error
raised inside one). A question whose run keeps raising is retried ``retries`` times, then
recorded with status ``error``, and the rest go on. A failed write is no run's fault: it is
never retried nor recorded; it stops the pool (no new run starts) and is raised to the caller.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Optional, Sequence

from araft_lc.agent.recorder import TrajectoryRecorder
from araft_lc.react.trajectory import TrajectoryRecord
from araft_lc.storage.write_error import is_write_failure
from evals.hotpotqa import Question
from evals.metrics import score

__all__ = ["run_pool"]


def run_pool(
    agent: Any,
    questions: Sequence[Question],
    on_record: Callable[[TrajectoryRecord], None],
    *,
    producer: Optional[dict[str, Any]] = None,
    concurrency: int = 1,
    retries: int = 2,
    desc: Optional[str] = None,
    postfix: Optional[Callable[[], dict[str, str]]] = None,
) -> int:
    """Run ``agent`` on every question; the number of runs that ended as errors.

    Args:
        producer: what made the records (model, prompt, repeat, ...); each record also gets the
            question's level and type.
        desc: the progress bar's label (None: no bar); ``postfix`` gives its running figures.

    Raises:
        WriteError: ``on_record`` (or a callback) failed to write; runs not yet started are
            cancelled, runs in flight finish first.
    """
    producer = dict(producer or {})
    errors = 0
    lock = threading.Lock()
    stop = threading.Event()

    def attempt(q: Question, meta: dict[str, Any]) -> TrajectoryRecord:
        recorder = TrajectoryRecorder(score=score)  # one per run: its record is this question's, whatever the threads
        config = {"callbacks": [recorder], "metadata": {"question_id": q.id, "gold_answer": q.answer, "producer": meta}}
        agent.invoke({"question": q.question}, config)
        if len(recorder.records) != 1:
            raise RuntimeError(f"the agent's run of {q.id} left {len(recorder.records)} records, not one")
        return recorder.records[0]

    def run(q: Question) -> None:
        nonlocal errors
        if stop.is_set():
            return
        meta = {**producer, "level": q.level, "type": q.type}
        record: Optional[TrajectoryRecord] = None
        last: Optional[BaseException] = None
        for _ in range(retries + 1):
            try:
                record = attempt(q, meta)
                break
            except Exception as e:
                if is_write_failure(e):  # a callback's write failed: the storage's fault, not the run's
                    stop.set()
                    raise
                last = e
        if record is None:
            with lock:
                errors += 1
            record = TrajectoryRecord(
                question_id=q.id,
                question=q.question,
                status="error",
                prediction=None,
                steps=[],
                gold_answer=q.answer,
                producer=meta,
                error=f"{type(last).__name__}: {last}",
            )
        try:
            on_record(record)
        except BaseException:
            stop.set()
            raise

    bar = None
    if desc is not None:
        from tqdm import tqdm

        bar = tqdm(total=len(questions), desc=desc, unit="q")
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        for future in as_completed([pool.submit(run, q) for q in questions]):
            future.result()
            if bar is not None:
                bar.update(1)
                if postfix is not None:
                    bar.set_postfix(postfix(), refresh=False)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return errors
