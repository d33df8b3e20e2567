"""A local structured trace: every graph node, model call and tool call as one JSON line.

No account needed; for LangSmith, set ``LANGSMITH_TRACING=true`` and ``LANGSMITH_API_KEY``
instead (LangChain reads them by itself).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from araft_lc.storage.redact import redact

__all__ = ["JsonlTraceHandler"]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return str(value)


class JsonlTraceHandler(BaseCallbackHandler):
    """Appends one JSON object per event to ``path`` (safe across concurrent runs)."""

    # A failed write must stop the run: LangChain logs and swallows a handler's error otherwise.
    raise_error = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._started: dict[UUID, float] = {}

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _write(self, event: str, run_id: UUID, parent_run_id: Optional[UUID], **data: Any) -> None:
        now = time.time()
        record = {
            "ts": now,
            "event": event,
            "run_id": str(run_id),
            "parent_run_id": str(parent_run_id) if parent_run_id else None,
        }
        if event.endswith("_start"):
            self._started[run_id] = now
        elif run_id in self._started:
            record["seconds"] = round(now - self._started.pop(run_id), 6)
        record.update(data)
        line = redact(json.dumps(record, default=_plain, ensure_ascii=False))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        metadata: Optional[dict] = None,
        **kwargs: Any,
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        self._write("chain_start", run_id, parent_run_id, name=kwargs.get("name"), node=node, inputs=inputs)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        self._write("chain_end", run_id, parent_run_id, outputs=outputs)

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._write("chain_error", run_id, parent_run_id, error=f"{type(error).__name__}: {error}")

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        invocation_params: Optional[dict] = None,
        **kwargs: Any,
    ) -> None:
        prompt = [{"role": m.type, "content": m.content} for m in messages[0]] if messages else []
        params = invocation_params or {}
        self._write(
            "model_start",
            run_id,
            parent_run_id,
            messages=prompt,
            model=params.get("model_id") or params.get("model_name") or params.get("model"),
            stop=params.get("stop"),
        )

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        gen = response.generations[0][0] if response.generations and response.generations[0] else None
        message = getattr(gen, "message", None)
        self._write(
            "model_end",
            run_id,
            parent_run_id,
            text=getattr(gen, "text", None),
            usage=getattr(message, "usage_metadata", None),
        )

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._write("model_error", run_id, parent_run_id, error=f"{type(error).__name__}: {error}")

    def on_tool_start(
        self, serialized: Any, input_str: str, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._write("tool_start", run_id, parent_run_id, tool=(serialized or {}).get("name"), input=input_str)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        self._write("tool_end", run_id, parent_run_id, output=getattr(output, "content", output))

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._write("tool_error", run_id, parent_run_id, error=f"{type(error).__name__}: {error}")
