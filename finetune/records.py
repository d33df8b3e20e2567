"""Trajectory records -> training records in TRL's own dataset formats.

SFT (``sft_records``): one record per step of a kept trajectory, as in the original: the prompt
is the system turn plus ``Question: ...`` and the scratchpad so far; the completion is the next
``Thought: ... / Action: [...]``. Formats: ``prompt_completion`` (TRL conversational
prompt/completion: the loss falls on the completion only) and ``text`` (the original's single
Llama-2 chat string ending in ``</s>``, with one ``<s>``).

DPO (``dpo_records``): prompt / chosen / rejected, chosen = the teacher's step, rejected =
repeating the previous step (the original's rule, ``kind: repeat_previous``). The first step has
no previous one; instead of the original's fixed filler sentence, its rejected step answers at
once without searching (``kind: answer_before_search``): a real failure mode of small agents,
in the same grammar as the chosen step, so the pair teaches something about behaviour, not format.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal, Optional

from araft_lc.llama2_format import llama2_prompt
from araft_lc.parser import format_action
from araft_lc.prompt import load_prompt, render_messages
from araft_lc.tools.wikipedia import WikipediaTool
from araft_lc.trajectory import Step, TrajectoryRecord

__all__ = ["step_text", "sft_records", "dpo_records"]

_ROLES = {"system": "system", "human": "user"}
SftFormat = Literal["prompt_completion", "text"]


def step_text(step: Step) -> str:
    """A step as the model writes it: the training target."""
    return f"Thought: {step.thought}\nAction: {format_action(step.action or '', step.action_input or '')}"


def _prompt(record: TrajectoryRecord, i: int, prompt_style: str) -> list[dict[str, str]]:
    tools = [WikipediaTool(backend=None)]
    messages = render_messages(load_prompt(prompt_style), tools, record.question, record.steps[:i])
    return [{"role": _ROLES[m.type], "content": m.text} for m in messages]


def _valid(record: TrajectoryRecord) -> bool:
    return all(s.action is not None and s.error is None for s in record.steps)


def sft_records(record: TrajectoryRecord, *, prompt_style: str = "fewshot",
                fmt: SftFormat = "prompt_completion") -> Iterator[dict[str, Any]]:
    """One SFT record per step of ``record`` (none if any step is malformed)."""
    if not _valid(record):
        return
    for i, step in enumerate(record.steps):
        prompt, completion = _prompt(record, i, prompt_style), step_text(step)
        base = {"question_id": record.question_id, "step": i}
        if fmt == "text":
            yield {**base, "text": f"{llama2_prompt(prompt)} {completion} </s>"}
        else:
            yield {**base, "prompt": prompt, "completion": [{"role": "assistant", "content": completion}]}


def dpo_records(record: TrajectoryRecord, *, prompt_style: str = "fewshot") -> Iterator[dict[str, Any]]:
    """One DPO pair per step of ``record`` (none if any step is malformed)."""
    if not _valid(record):
        return
    answer: Optional[str] = record.prediction or record.gold_answer
    for i, step in enumerate(record.steps):
        if i == 0:
            if step.action == "Answer" or answer is None:
                continue
            rejected = f"Thought: I know the answer.\nAction: {format_action('Answer', answer)}"
            kind = "answer_before_search"
        else:
            rejected, kind = step_text(record.steps[i - 1]), "repeat_previous"
        yield {
            "question_id": record.question_id, "step": i, "kind": kind,
            "prompt": _prompt(record, i, prompt_style),
            "chosen": [{"role": "assistant", "content": step_text(step)}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
