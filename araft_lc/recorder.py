"""``TrajectoryRecorder``: rebuilds the trajectory record of every agent run from callbacks alone.

Pass it as ``config={"callbacks": [recorder]}``; nothing in the graph changes. Runs are told apart
by ``run_id``/``parent_run_id``, so concurrent runs (``batch``, threads) never mix. Per run,
``config["metadata"]`` may carry ``question_id``, ``gold_answer`` and ``producer``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from araft_lc.trajectory import Step, TrajectoryRecord

__all__ = ["TrajectoryRecorder"]


@dataclass
class _Run:
    metadata: dict[str, Any]
    started: float
    calls: dict[UUID, dict[str, Any]] = field(default_factory=dict)


class TrajectoryRecorder(BaseCallbackHandler):
    """Calls ``on_record(record)`` once per finished top-level run (and keeps them in ``records``).

    Args:
        on_record: where each record goes (a JSONL sink's ``write``, a router); called from the
            thread that finished the run.
        keep: also keep every record in ``self.records``.
    """

    # A failed write must stop the run: LangChain logs and swallows a handler's error otherwise.
    raise_error = True

    def __init__(self, on_record: Optional[Callable[[TrajectoryRecord], None]] = None, keep: bool = True):
        self.on_record = on_record
        self.keep = keep
        self.records: list[TrajectoryRecord] = []
        self._runs: dict[UUID, _Run] = {}
        self._root_of: dict[UUID, UUID] = {}
        self._lock = threading.Lock()

    def _root(self, run_id: UUID, parent_run_id: Optional[UUID]) -> Optional[UUID]:
        if parent_run_id is None:
            return run_id
        root = self._root_of.get(parent_run_id)
        if root is not None:
            self._root_of[run_id] = root
        return root

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID,
                       parent_run_id: Optional[UUID] = None, metadata: Optional[dict] = None,
                       **kwargs: Any) -> None:
        with self._lock:
            if parent_run_id is None:
                self._root_of[run_id] = run_id
                self._runs[run_id] = _Run(dict(metadata or {}), time.perf_counter())
            else:
                self._root(run_id, parent_run_id)

    def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        with self._lock:
            root = self._root(run_id, parent_run_id)
            if root in self._runs:
                prompt = [{"role": m.type, "content": m.content} for m in messages[0]]
                self._runs[root].calls[run_id] = {"messages": prompt, "output": None, "usage": None}

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None,
                   **kwargs: Any) -> None:
        with self._lock:
            root = self._root_of.get(run_id)
            call = self._runs[root].calls.get(run_id) if root in self._runs else None
            if call is not None:
                gen = response.generations[0][0]
                call["output"] = gen.text
                call["usage"] = getattr(getattr(gen, "message", None), "usage_metadata", None)

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID,
                      parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        with self._lock:
            self._root(run_id, parent_run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID,
                       parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            self._forget(run_id)

    def _forget(self, root: UUID) -> Optional[_Run]:
        with self._lock:
            run = self._runs.pop(root, None)
            for child in [r for r, top in self._root_of.items() if top == root]:
                del self._root_of[child]
            return run

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None,
                     **kwargs: Any) -> None:
        if parent_run_id is not None:
            return
        run = self._forget(run_id)
        if run is None or not isinstance(outputs, dict) or "steps" not in outputs:
            return  # not an agent run
        record = self.build(outputs, run)
        if self.keep:
            with self._lock:
                self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)

    @staticmethod
    def build(state: dict[str, Any], run: _Run) -> TrajectoryRecord:
        from evals.metrics import score

        question = state.get("question", "")
        meta = run.metadata
        gold = meta.get("gold_answer")
        steps = [s if isinstance(s, Step) else Step.from_dict(s) for s in state.get("steps", [])]
        return TrajectoryRecord(
            question_id=str(meta.get("question_id") or "q-" + hashlib.sha1(question.encode()).hexdigest()[:12]),
            question=question,
            status=state.get("status", "running"),
            prediction=state.get("answer"),
            steps=steps,
            gold_answer=gold,
            scores=score(state.get("answer"), gold) if gold is not None else {},
            producer=dict(meta.get("producer") or {}),
            calls=list(run.calls.values()),
            seconds=round(time.perf_counter() - run.started, 3),
        )
