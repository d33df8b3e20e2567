"""``TrajectoryRecorder``: rebuilds the trajectory record of every agent run from callbacks alone.

Pass it as ``config={"callbacks": [recorder]}``; nothing in the graph changes. It finds the
Araft graph's own run by its tag (``araft:agent``) wherever the graph sits: called directly, as
a subgraph node of another graph, as a step of a chain, in ``batch``. Runs are told apart by
``run_id``/``parent_run_id``, so concurrent runs never mix. Per run, ``config["metadata"]`` may
carry ``question_id``, ``gold_answer`` and ``producer``; a ``score`` function turns the prediction
and the gold answer into the record's scores. A top-level run that ends with no Araft run inside
gets one warning (per recorder), not silence.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from araft_lc.agent.schema import AGENT_TAG, TOOLS_KEY
from araft_lc.react.trajectory import Step, TrajectoryRecord

__all__ = ["TrajectoryRecorder", "Scorer"]

# (prediction, gold answer) -> named scores, e.g. evals.metrics.score: {"em": 1.0, "f1": 1.0}
Scorer = Callable[[Optional[str], str], dict[str, float]]


@dataclass
class _Run:
    metadata: dict[str, Any]
    started: float
    calls: dict[UUID, dict[str, Any]] = field(default_factory=dict)


class TrajectoryRecorder(BaseCallbackHandler):
    """Calls ``on_record(record)`` once per finished Araft run (and keeps them in ``records``).

    Args:
        on_record: where each record goes (a JSONL sink's ``write``, a router); called from the
            thread that finished the run.
        keep: also keep every record in ``self.records``.
        score: scores a run's prediction against its ``gold_answer`` (``evals.metrics.score`` for
            HotpotQA's EM and F1); None, or a run without a gold answer: no scores.
    """

    # A failed write must stop the run: LangChain logs and swallows a handler's error otherwise.
    raise_error = True

    def __init__(
        self,
        on_record: Optional[Callable[[TrajectoryRecord], None]] = None,
        keep: bool = True,
        score: Optional[Scorer] = None,
    ):
        self.on_record = on_record
        self.keep = keep
        self.score = score
        self.records: list[TrajectoryRecord] = []
        self._runs: dict[UUID, _Run] = {}  # Araft run id -> what it has gathered so far
        self._owner: dict[UUID, Optional[UUID]] = {}  # any run id -> the Araft run it is inside
        self._top: dict[UUID, UUID] = {}  # any run id -> the top-level run of its tree
        self._found: set[UUID] = set()  # top-level runs that held an Araft run
        self._warned = False
        self._lock = threading.Lock()

    def _enter(
        self,
        run_id: UUID,
        parent_run_id: Optional[UUID],
        tags: Optional[list[str]] = None,
        metadata: Optional[dict] = None,
    ) -> Optional[UUID]:
        """Place a starting run in its tree; an Araft run starts a record. Its owner, if any."""
        top = run_id if parent_run_id is None else self._top.get(parent_run_id, parent_run_id)
        self._top[run_id] = top
        owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
        if owner is None and AGENT_TAG in (tags or ()):
            owner = run_id
            self._runs[run_id] = _Run(dict(metadata or {}), time.perf_counter())
            self._found.add(top)
        self._owner[run_id] = owner
        return owner

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict] = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._enter(run_id, parent_run_id, tags, metadata)

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            owner = self._enter(run_id, parent_run_id)
            if owner in self._runs:
                prompt = [{"role": m.type, "content": m.content} for m in messages[0]]
                self._runs[owner].calls[run_id] = {"messages": prompt, "output": None, "usage": None}

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        with self._lock:
            owner = self._owner.get(run_id)
            call = self._runs[owner].calls.get(run_id) if owner in self._runs else None
            if call is not None:
                gen = response.generations[0][0]
                call["output"] = gen.text
                # Streamed or not, the message carries the call's usage (on the last chunk).
                call["usage"] = getattr(getattr(gen, "message", None), "usage_metadata", None)

    def on_tool_start(
        self, serialized: Any, input_str: str, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        with self._lock:
            self._enter(run_id, parent_run_id)

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
            if parent_run_id is None:
                self._forget(run_id)

    def _forget(self, top: UUID) -> None:
        for run in [r for r, t in self._top.items() if t == top]:
            self._top.pop(run, None)
            self._owner.pop(run, None)
        self._found.discard(top)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
            unfound = False
            if parent_run_id is None:
                unfound = run_id not in self._found and not self._warned
                self._warned |= unfound
                self._forget(run_id)
        if unfound:
            warnings.warn(
                "TrajectoryRecorder: a run ended with no Araft agent run inside it, so nothing was "
                "recorded; attach the recorder to a config whose run contains create_araft_agent's "
                "graph",
                RuntimeWarning,
                stacklevel=2,
            )
        if run is None:
            return
        if not isinstance(outputs, dict) or "steps" not in outputs:
            warnings.warn(
                f"TrajectoryRecorder: the Araft run ended without its steps (got {type(outputs).__name__}); no record",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        record = self.build(outputs, run)
        if self.keep:
            with self._lock:
                self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)

    def build(self, state: dict[str, Any], run: _Run) -> TrajectoryRecord:
        question = state.get("question") or ""
        meta = run.metadata
        gold = meta.get("gold_answer")
        steps = [Step.from_dict(s) for s in state.get("steps") or []]
        runs = [
            {**r, "scores": self.score(r.get("answer"), gold) if gold is not None and self.score else {}}
            for r in state.get("runs") or []
        ]
        return TrajectoryRecord(
            question_id=str(meta.get("question_id") or "q-" + hashlib.sha1(question.encode()).hexdigest()[:12]),
            question=question,
            status=state.get("status", "running"),
            prediction=state.get("answer"),
            steps=steps,
            gold_answer=gold,
            scores=self.score(state.get("answer"), gold) if gold is not None and self.score is not None else {},
            producer=dict(meta.get("producer") or {}),
            calls=list(run.calls.values()),
            seconds=round(time.perf_counter() - run.started, 3),
            vote=state.get("vote"),
            runs=runs,
            tools=list(meta.get(TOOLS_KEY) or []),
        )
