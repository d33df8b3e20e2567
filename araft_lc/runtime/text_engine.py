"""What every decode engine shares, whatever runs the model: prompt text to checked token ids,
the adapter check, new tokens to a ``Completion``, and a stream's hold-back of stop strings.

``araft_lc.runtime.torch.engine.DecodeEngine`` runs a transformers model,
``araft_lc.runtime.llama_cpp.engine.LlamaCppEngine`` a GGUF on llama.cpp; the chat model talks to
either through these methods and ``complete``/``stream``.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

from araft_lc.runtime.decoding import Completion, ContextLimitError, Decoding, cut_at_stop_strings

__all__ = ["TextEngine", "TokenStreamer", "held_back", "streamed"]


class TextEngine:
    """The shared half of an engine; a subclass sets ``tokenizer``, ``adapters`` and ``merged``
    and supplies ``context_length``, ``complete``, ``stream``, ``warm_up`` and ``close``."""

    tokenizer: Any
    adapters: tuple[str, ...] = ()
    merged: Optional[str] = None

    @property
    def context_length(self) -> Optional[int]:
        raise NotImplementedError

    def tokenize(self, text: str) -> list[int]:
        """``text``'s token ids; it carries its own special tokens, so none are added."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(self, text: str, max_new_tokens: int = 0) -> list[int]:
        """``tokenize(text)``, checked to fit the context with ``max_new_tokens`` after it.

        Raises:
            ContextLimitError: it does not fit; nothing was prefilled.
        """
        ids = self.tokenize(text)
        limit = self.context_length
        if limit is not None and len(ids) + max_new_tokens > limit:
            raise ContextLimitError(
                f"the prompt is {len(ids):,} tokens and a step may write {max_new_tokens:,} "
                f"more, past the model's context of {limit:,} positions"
            )
        return ids

    def check_adapter(self, adapter: Optional[str]) -> None:
        """Refuse an adapter the model does not have, or one it cannot switch to.

        Raises:
            ValueError: naming the adapters there are.
        """
        if adapter is not None and adapter not in self.adapters:
            if not self.adapters:
                raise ValueError(f"adapter {adapter!r} asked for, but the model has no adapters")
            raise ValueError(f"unknown adapter {adapter!r}: loaded are {list(self.adapters)}")
        if self.merged is not None and adapter != self.merged:
            raise ValueError(
                f"adapter {adapter!r} asked for, but {self.merged!r} is merged into the weights "
                "(merge_lora=True): build the model without merge_lora to switch per call"
            )

    def completion(self, ids: Sequence[int], new_tokens: list[int], decoding: Decoding) -> Completion:
        """The ``Completion`` of prompt ``ids`` and its ``new_tokens``: text cut at the stop strings."""
        text, stopped = cut_at_stop_strings(self.tokenizer.decode(new_tokens, skip_special_tokens=True), decoding.stop)
        return Completion(text, len(ids), len(new_tokens), stopped)

    def complete(self, ids: list[int], decoding: Decoding, deadline: Optional[float] = None) -> Completion:
        raise NotImplementedError

    def stream(
        self, ids: list[int], decoding: Decoding, deadline: Optional[float] = None
    ) -> Iterator[Union[str, Completion]]:
        raise NotImplementedError

    def warm_up(self, adapter: Optional[str], lengths: Optional[Sequence[int]] = None) -> dict[int, float]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class TokenStreamer:
    """New tokens, ``put`` from the worker thread, as text pieces to iterate in another: the
    tokens so far are decoded whole each time, so a character that spans tokens comes out whole,
    as transformers' ``TextIteratorStreamer`` gives it, with no torch. ``end`` ends the iteration."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._ids: list[int] = []
        self._shown = 0  # characters already handed out
        self._pieces: queue.Queue[Optional[str]] = queue.Queue()

    def _flush(self, final: bool) -> None:
        text = self.tokenizer.decode(self._ids, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return  # a character not yet whole
        if len(text) > self._shown:
            self._pieces.put(text[self._shown :])
            self._shown = len(text)

    def put(self, token: int) -> None:
        self._ids.append(token)
        self._flush(final=False)

    def end(self) -> None:
        self._flush(final=True)
        self._pieces.put(None)

    def __iter__(self) -> Iterator[str]:
        while (piece := self._pieces.get()) is not None:
            yield piece


def held_back(pieces: Iterable[str], stop: Sequence[str]) -> Iterator[Union[str, tuple[str, bool]]]:
    """``pieces`` of streamed text as they may be shown, then ``(tail, stopped)``: a piece that
    could begin a stop string is held back until it is decided, so no piece of a stop string is
    ever yielded; the tail is what was held at the end ("" when a stop string ended the text)."""
    hold = max((len(s) for s in stop), default=1) - 1
    pending, stopped = "", False
    for piece in pieces:
        if stopped:
            continue  # drained, so the producer finishes
        pending += piece
        text, stopped = cut_at_stop_strings(pending, stop)
        emit = text if stopped else text[: max(0, len(text) - hold)]
        pending = "" if stopped else text[len(emit) :]
        if emit:
            yield emit
    yield ("" if stopped else pending, stopped)


def streamed(
    work: Callable[[], int], streamer: Any, ids: Sequence[int], stop: Sequence[str]
) -> Iterator[Union[str, Completion]]:
    """Run ``work`` (a generation that feeds ``streamer``, a ``TokenStreamer`` or transformers'
    ``TextIteratorStreamer``, and returns how many tokens it wrote) in a thread of its own; yield
    the text as ``held_back`` lets it through, then the ``Completion`` (its text: the tail not yet
    yielded). An exception in ``work`` is raised here, in the caller's thread."""
    written: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            written.append(work())
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)
        finally:
            streamer.end()  # a second end, after generate's own, adds nothing

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    tail, stopped = "", False
    for piece in held_back(streamer, stop):
        if isinstance(piece, str):
            yield piece
        else:
            tail, stopped = piece
    thread.join()
    if errors:
        raise errors[0]
    yield Completion(tail, len(ids), written[0] if written else 0, stopped)
