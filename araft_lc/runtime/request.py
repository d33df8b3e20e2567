"""One call waiting to be decoded: what every batcher (padded, continuous, llama.cpp) takes."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Optional

from araft_lc.runtime.decoding import Decoding

__all__ = ["Request"]


@dataclass
class Request:
    ids: list[int]
    key: Decoding  # the call's decoding: requests batch together only with equal keys (adapter, stop strings)
    deadline: Optional[float] = None  # time.time() at which this row's generation stops
    future: Future = field(default_factory=Future)
    on_token: Optional[Callable[[int], None]] = None  # given each new token as it is decided (streaming)
