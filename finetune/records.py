"""Trajectory records -> training records in TRL's own dataset formats.

SFT (``sft_records``), two granularities:

- ``step`` (the original): one record per step of a kept trajectory; the prompt is the system turn,
  the question and the run so far, the completion the next ``Thought: ... / Action: [...]``.
  Formats: ``prompt_completion`` (TRL conversational prompt/completion: the loss falls on the
  completion only) and ``text`` (the original's single Llama-2 chat string ending in ``</s>``,
  with one ``<s>``).
- ``trajectory``: one record per trajectory, TRL's conversational ``messages``: every step an
  assistant turn, every observation a user turn. The loss falls on the assistant turns only, so
  it is the same supervision as ``step`` without repeating the prefix in every record. It needs a
  prompt style with ``layout: turns`` (``zeroshot_turns``), where a run is one growing
  conversation; with the scratchpad layout the steps live inside one user turn.

DPO (``dpo_records``): prompt / chosen / rejected, chosen = the teacher's step, each pair named by
its ``kind``:

- ``repeat_previous``: the previous step again (the original's rule);
- ``answer_before_search``: for the first step, which has no previous one, instead of the
  original's fixed filler sentence: answering at once without searching, a real failure mode of
  small agents, written in the same grammar as the chosen step so the pair teaches behaviour,
  not format;
- ``malformed_action`` (opt-in): the chosen step with its Action broken (no brackets), which
  teaches the format the parser needs;
- ``failed_run`` (from rejected trajectories): the step a failed teacher run took at the same
  point after the same steps, when it differs from the kept run's step.

``on_policy_records`` reads the student's runs instead: at each state the student reached where
its step was a mistake, the teacher's step from that state is chosen and the student's rejected
(``evals.on_policy``); each pair also names its ``reason``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, Optional

from araft_lc.chat_format import Turn, to_turns
from araft_lc.llama2_format import llama2_prompt
from araft_lc.parser import format_action
from araft_lc.prompt import load_prompt, render_messages, step_body
from araft_lc.tools.wikipedia import WikipediaTool
from araft_lc.trajectory import Step, TrajectoryRecord

if TYPE_CHECKING:
    from evals.on_policy import Correction

__all__ = ["SFT_FORMATS", "GRANULARITIES", "DPO_KINDS", "sft_records", "dpo_records", "failed_steps",
           "FailedSteps", "on_policy_records"]

SftFormat = Literal["prompt_completion", "text"]
SFT_FORMATS = ("prompt_completion", "text")
GRANULARITIES = ("step", "trajectory")
DPO_KINDS = ("repeat_previous", "answer_before_search", "malformed_action", "failed_run")
DEFAULT_DPO_KINDS = ("repeat_previous", "answer_before_search", "failed_run")


def _prompt(record: TrajectoryRecord, i: int, prompt_style: str) -> list[Turn]:
    """The turns the model saw before step ``i``."""
    tools = [WikipediaTool(backend=None)]
    return to_turns(render_messages(load_prompt(prompt_style), tools, record.question, record.steps[:i]))


def _assistant(text: str) -> list[Turn]:
    return [{"role": "assistant", "content": text}]


def _valid(record: TrajectoryRecord) -> bool:
    return bool(record.steps) and all(s.action is not None and s.error is None for s in record.steps)


def sft_records(record: TrajectoryRecord, *, prompt_style: str = "fewshot",
                fmt: SftFormat = "prompt_completion", granularity: str = "step") -> Iterator[dict[str, Any]]:
    """SFT records of ``record`` (none if any step is malformed).

    Raises:
        ValueError: ``trajectory`` granularity with a scratchpad-layout prompt or the text format.
    """
    if granularity == "trajectory":
        if load_prompt(prompt_style).layout != "turns":
            raise ValueError(f"--granularity trajectory needs a prompt style with layout: turns, not "
                             f"{prompt_style!r}: pass --prompt-style zeroshot_turns")
        if fmt != "prompt_completion":
            raise ValueError("--granularity trajectory writes conversational messages: drop --format text")
    elif granularity != "step":
        raise ValueError(f"unknown granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
    if not _valid(record):
        return
    if granularity == "trajectory":
        last = len(record.steps) - 1
        messages = _prompt(record, last, prompt_style) + _assistant(step_body(record.steps[last]))
        yield {"question_id": record.question_id, "messages": messages}
        return
    for i, step in enumerate(record.steps):
        prompt, completion = _prompt(record, i, prompt_style), step_body(step)
        base = {"question_id": record.question_id, "step": i}
        if fmt == "text":
            yield {**base, "text": f"{llama2_prompt(prompt)} {completion} </s>"}
        else:
            yield {**base, "prompt": prompt, "completion": _assistant(completion)}


def _malformed(step: Step) -> str:
    """The step with its Action written without the brackets the parser needs."""
    return f"Thought: {step.thought}\nAction: {step.action}: {step.action_input or ''}"


# (question_id, steps taken before) -> the next steps failed runs took from there
FailedSteps = dict[tuple[str, tuple[str, ...]], list[str]]


def failed_steps(rejects: Iterable[TrajectoryRecord]) -> FailedSteps:
    """What failed teacher runs wrote at each point, for the ``failed_run`` kind. A step is keyed
    by the steps before it, so it is used only where the kept run had taken the same steps."""
    out: FailedSteps = {}
    for record in rejects:
        bodies: list[str] = []
        for step in record.steps:
            if step.action is None:
                break
            out.setdefault((record.question_id, tuple(bodies)), []).append(step_body(step))
            bodies.append(step_body(step))
    return out


def dpo_records(record: TrajectoryRecord, *, prompt_style: str = "fewshot",
                kinds: Iterable[str] = DEFAULT_DPO_KINDS,
                failed: Optional[FailedSteps] = None) -> Iterator[dict[str, Any]]:
    """DPO pairs of ``record`` (none if any step is malformed), of the given ``kinds``."""
    kinds = set(kinds)
    unknown = kinds - set(DPO_KINDS)
    if unknown:
        raise ValueError(f"unknown DPO kind {sorted(unknown)[0]!r}: use some of {', '.join(DPO_KINDS)}")
    if not _valid(record):
        return
    answer: Optional[str] = record.prediction or record.gold_answer
    bodies = [step_body(s) for s in record.steps]
    for i, step in enumerate(record.steps):
        rejected: list[tuple[str, str]] = []
        if i > 0 and "repeat_previous" in kinds:
            rejected.append(("repeat_previous", bodies[i - 1]))
        if i == 0 and "answer_before_search" in kinds and step.action != "Answer" and answer is not None:
            rejected.append(("answer_before_search",
                             f"Thought: I know the answer.\nAction: {format_action('Answer', answer)}"))
        if "malformed_action" in kinds:
            rejected.append(("malformed_action", _malformed(step)))
        if "failed_run" in kinds and failed:
            for body in dict.fromkeys(failed.get((record.question_id, tuple(bodies[:i])), [])):
                if body != bodies[i]:
                    rejected.append(("failed_run", body))
        prompt = _prompt(record, i, prompt_style) if rejected else []
        for kind, text in rejected:
            yield {"question_id": record.question_id, "step": i, "kind": kind, "prompt": prompt,
                   "chosen": _assistant(bodies[i]), "rejected": _assistant(text)}


def on_policy_records(record: TrajectoryRecord, fixes: Iterable["Correction"], *,
                      prompt_style: str = "fewshot") -> Iterator[dict[str, Any]]:
    """DPO pairs of a student run from the teacher's corrections of it (``evals.on_policy``): the
    prompt is the student's own run up to the corrected step."""
    for fix in fixes:
        yield {"question_id": record.question_id, "step": fix.step, "kind": "on_policy", "reason": fix.reason,
               "prompt": _prompt(record, fix.step, prompt_style), "chosen": _assistant(fix.chosen),
               "rejected": _assistant(fix.rejected)}
