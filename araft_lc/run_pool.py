"""Run an agent over many questions: bounded concurrency, bounded retries, a progress bar.

Shared by teacher generation (``araft generate``) and evaluation (``araft eval``). Each finished
run reaches ``on_record`` as the trajectory record ``TrajectoryRecorder`` rebuilt from callbacks;
a question whose run keeps raising is retried ``retries`` times, then recorded with status
``error``, and the rest go on.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Optional, Sequence

from araft_lc.recorder import TrajectoryRecorder
from araft_lc.trajectory import TrajectoryRecord
from evals.hotpotqa import Question

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
    """
    producer = dict(producer or {})
    errors = 0
    lock = threading.Lock()
    recorder = TrajectoryRecorder(on_record=on_record, keep=False)

    def run(q: Question) -> None:
        nonlocal errors
        meta = {**producer, "level": q.level, "type": q.type}
        config = {"callbacks": [recorder], "metadata": {"question_id": q.id, "gold_answer": q.answer, "producer": meta}}
        last: Optional[BaseException] = None
        for _ in range(retries + 1):
            try:
                agent.invoke({"question": q.question}, config)
                return
            except Exception as e:  # noqa: BLE001 - recorded as an error after the retries
                last = e
        with lock:
            errors += 1
        on_record(TrajectoryRecord(
            question_id=q.id, question=q.question, status="error", prediction=None, steps=[],
            gold_answer=q.answer, producer=meta, error=f"{type(last).__name__}: {last}"))

    bar = None
    if desc is not None:
        from tqdm import tqdm

        bar = tqdm(total=len(questions), desc=desc, unit="q")
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for future in as_completed([pool.submit(run, q) for q in questions]):
            future.result()
            if bar is not None:
                bar.update(1)
                if postfix is not None:
                    bar.set_postfix(postfix(), refresh=False)
    if bar is not None:
        bar.close()
    return errors
