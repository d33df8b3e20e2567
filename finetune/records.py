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
- ``wrong_answer`` (opt-in): the answer step with a wrong answer the run makes easy to give: each
  title it searched that shares no word with the answer (a bridge question's student answers with
  the page it just searched; a comparison's picks the other entity), or, for a yes/no answer, the
  other one. The thought's own naming of the answer is changed with it, so the pair differs only
  in which answer it gives.

``on_policy_records`` reads the student's runs instead: at each state the student reached where
its step was a mistake, the teacher's step from that state is chosen and the student's rejected
(``evals.on_policy``); each pair also names its ``reason``.

``contrast_records`` (kind ``self_contrast``) needs no teacher: it sets the student's own runs of
one question against each other, the step of a run that answered exactly against the step of a
run that failed, where the two part.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Literal, Mapping, Optional, Union

from typing_extensions import TypedDict

from araft_lc.react.chat_format import Turn
from araft_lc.react.llama2_format import llama2_prompt
from araft_lc.react.parser import format_action
from araft_lc.react.prompt import load_prompt, step_body
from araft_lc.react.step import action_key
from araft_lc.react.trajectory import Step, TrajectoryRecord, check_version
from evals.metrics import exact_match, f1_score, normalize_answer
from evals.on_policy import Correction, step_reason

__all__ = [
    "SFT_FORMATS",
    "GRANULARITIES",
    "DPO_KINDS",
    "TRAINING_VERSION",
    "PromptCompletionRecord",
    "MessagesRecord",
    "TextRecord",
    "SFTRecord",
    "DPORecord",
    "RecordFormat",
    "record_format",
    "sft_records",
    "dpo_records",
    "failed_steps",
    "FailedSteps",
    "on_policy_records",
    "contrast_records",
    "FAILED_F1",
]

SftFormat = Literal["prompt_completion", "text"]
SFT_FORMATS = ("prompt_completion", "text")
GRANULARITIES = ("step", "trajectory")
DPO_KINDS = ("repeat_previous", "answer_before_search", "malformed_action", "failed_run", "wrong_answer")
DEFAULT_DPO_KINDS = ("repeat_previous", "answer_before_search", "failed_run")

# The version of the training record formats below; readers refuse a newer one, and a record
# without one (written before versions) is version 1.
TRAINING_VERSION = 1


class _Origin(TypedDict, total=False):
    """Where a training record came from: not required, and ignored by ``trl``."""

    question_id: str
    step: int
    version: int
    prompt_style: str  # the prompt the record renders (araft train records it with the adapter)


# Training records: TRL's own dataset formats (their required fields are what ``trl`` trains on).
class PromptCompletionRecord(_Origin):
    """SFT, one step: TRL's conversational prompt/completion (the loss on the completion)."""

    prompt: list[Turn]
    completion: list[Turn]


class MessagesRecord(_Origin):
    """SFT, one whole trajectory: TRL's conversational messages (the loss on assistant turns)."""

    messages: list[Turn]


class TextRecord(_Origin):
    """SFT, one step: the original's single Llama-2 chat string (the loss on every token)."""

    text: str


SFTRecord = Union[PromptCompletionRecord, MessagesRecord, TextRecord]


class _PairOrigin(_Origin, total=False):
    kind: str  # which rule made the rejected side (DPO_KINDS, or on_policy)
    reason: str  # on_policy: what the student's step got wrong (evals.on_policy.REASONS)


class DPORecord(_PairOrigin):
    """DPO, one step: TRL's conversational prompt/chosen/rejected."""

    prompt: list[Turn]
    chosen: list[Turn]
    rejected: list[Turn]


RecordFormat = Literal["prompt_completion", "messages", "text", "dpo"]
# each format by the fields `trl` needs, the most fields first (a DPO record also has a prompt)
_FORMATS: tuple[tuple[RecordFormat, Any], ...] = (
    ("dpo", DPORecord),
    ("prompt_completion", PromptCompletionRecord),
    ("messages", MessagesRecord),
    ("text", TextRecord),
)


def record_format(row: Mapping[str, Any]) -> RecordFormat:
    """Which training record ``row`` is, by the fields its type requires.

    Raises:
        ValueError: it is none of them, or of a format version this code does not read.
    """
    for name, kind in _FORMATS:
        if kind.__required_keys__ <= row.keys():
            check_version(dict(row), TRAINING_VERSION, "a training record of")
            return name
    raise ValueError(
        f"not a training record: has {', '.join(sorted(row)) or 'no fields'}, expected "
        "prompt+completion or messages or text (SFT), or prompt+chosen+rejected (DPO)"
    )


def _assistant(text: str) -> list[Turn]:
    return [{"role": "assistant", "content": text}]


def _valid(record: TrajectoryRecord) -> bool:
    return bool(record.steps) and all(s.action is not None and s.error is None for s in record.steps)


def sft_records(
    record: TrajectoryRecord,
    *,
    prompt_style: str = "fewshot",
    fmt: SftFormat = "prompt_completion",
    granularity: str = "step",
) -> Iterator[SFTRecord]:
    """SFT records of ``record`` (none if any step is malformed).

    Raises:
        ValueError: ``trajectory`` granularity with a scratchpad-layout prompt or the text format.
    """
    if granularity == "trajectory":
        if load_prompt(prompt_style).layout != "turns":
            raise ValueError(
                f"--granularity trajectory needs a prompt style with layout: turns, not "
                f"{prompt_style!r}: pass --prompt-style zeroshot_turns"
            )
        if fmt != "prompt_completion":
            raise ValueError("--granularity trajectory writes conversational messages: drop --format text")
    elif granularity != "step":
        raise ValueError(f"unknown granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
    if not _valid(record):
        return
    if granularity == "trajectory":
        # the run up to its last step, which ends the record as the model wrote it (an observation
        # after it, where the run did not answer, is no target)
        last = len(record.steps) - 1
        messages = record.to_messages(prompt_style, upto=last) + _assistant(step_body(record.steps[last]))
        yield MessagesRecord(
            question_id=record.question_id, messages=messages, version=TRAINING_VERSION, prompt_style=prompt_style
        )
        return
    for i, step in enumerate(record.steps):
        prompt, completion = record.to_messages(prompt_style, upto=i), step_body(step)
        if fmt == "text":
            yield TextRecord(
                question_id=record.question_id,
                step=i,
                text=f"{llama2_prompt(prompt)} {completion} </s>",
                version=TRAINING_VERSION,
                prompt_style=prompt_style,
            )
        else:
            yield PromptCompletionRecord(
                question_id=record.question_id,
                step=i,
                prompt=prompt,
                completion=_assistant(completion),
                version=TRAINING_VERSION,
                prompt_style=prompt_style,
            )


def _malformed(step: Step) -> str:
    """The step with its Action written without the brackets the parser needs."""
    return f"Thought: {step.thought}\nAction: {step.action}: {step.action_input or ''}"


def _wrong_answers(record: TrajectoryRecord, answer: str) -> list[str]:
    """The ``wrong_answer`` kind's answers for a run that answered ``answer``: the other of yes/no,
    else each distinct search input of the run with no word in common with the answer."""
    given = normalize_answer(answer)
    if given in ("yes", "no"):
        return ["no" if given == "yes" else "yes"]
    searched: dict[str, str] = {}  # the first spelling of each search, by its normal form
    for step in record.steps:
        if step.action not in (None, "Answer") and step.action_input:
            searched.setdefault(normalize_answer(step.action_input), step.action_input)
    return [text for key, text in searched.items() if key and f1_score(text, answer) == 0.0]


def _answering(step: Step, answer: str, other: str) -> str:
    """``step`` (an answer step) giving ``other`` instead of ``answer``, in its thought too."""
    before, found, after = step.thought.rpartition(answer)
    thought = f"{before}{other}{after}" if found else step.thought
    return f"Thought: {thought}\nAction: {format_action('Answer', other)}"


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


def dpo_records(
    record: TrajectoryRecord,
    *,
    prompt_style: str = "fewshot",
    kinds: Iterable[str] = DEFAULT_DPO_KINDS,
    failed: Optional[FailedSteps] = None,
) -> Iterator[DPORecord]:
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
            rejected.append(
                ("answer_before_search", f"Thought: I know the answer.\nAction: {format_action('Answer', answer)}")
            )
        if "malformed_action" in kinds:
            rejected.append(("malformed_action", _malformed(step)))
        if i == len(record.steps) - 1 and step.action == "Answer" and "wrong_answer" in kinds:
            given = step.action_input or ""
            rejected += [("wrong_answer", _answering(step, given, other)) for other in _wrong_answers(record, given)]
        if "failed_run" in kinds and failed:
            for body in dict.fromkeys(failed.get((record.question_id, tuple(bodies[:i])), [])):
                if body != bodies[i]:
                    rejected.append(("failed_run", body))
        prompt = record.to_messages(prompt_style, upto=i) if rejected else []
        for kind, text in rejected:
            yield DPORecord(
                question_id=record.question_id,
                step=i,
                kind=kind,
                prompt=prompt,
                chosen=_assistant(bodies[i]),
                rejected=_assistant(text),
                version=TRAINING_VERSION,
                prompt_style=prompt_style,
            )


def on_policy_records(
    record: TrajectoryRecord, fixes: Iterable[Correction], *, prompt_style: str = "fewshot"
) -> Iterator[DPORecord]:
    """DPO pairs of a student run from the teacher's corrections of it (``evals.on_policy``): the
    prompt is the student's own run up to the corrected step; ``reason`` says what was wrong."""
    for fix in fixes:
        yield DPORecord(
            question_id=record.question_id,
            step=fix.step,
            kind="on_policy",
            reason=fix.reason,
            prompt=record.to_messages(prompt_style, upto=fix.step),
            chosen=_assistant(fix.chosen),
            rejected=_assistant(fix.rejected),
            version=TRAINING_VERSION,
            prompt_style=prompt_style,
        )


# self_contrast: a run whose answer scores below this F1 against the gold answer is a failed run
FAILED_F1 = 0.5
# runs that ended for a reason of the world (a time limit, a tool error) show no choice of the model's
_MODEL_ENDINGS = ("answered", "step_limit", "parse_error")


def _gold(record: TrajectoryRecord) -> str:
    """The gold answer of a run ``contrast_records`` pairs."""
    # contrast_records groups only the runs whose gold_answer is not None
    assert record.gold_answer is not None, f"run of {record.question_id} has no gold answer"
    return record.gold_answer


def contrast_records(records: Iterable[TrajectoryRecord], *, prompt_style: str = "fewshot") -> Iterator[DPORecord]:
    """``self_contrast`` pairs from several runs of the student on each question (sampled, or
    greedy beside sampled): for every run that answered exactly and every run that failed (F1 below
    ``FAILED_F1``), at the first step where the two differ, the exact run's step is chosen and the
    failed run's rejected. The steps before are the same, so the observations are too (the tools
    are deterministic) and the prompt is a state both runs reached. Where the two steps take the
    same action in other words, the runs part by chance, not by a choice: no pair. Both sides are
    the student's own writing, so a pair moves a decision, not a format the student never wrote;
    ``reason`` says what the rejected step did (``evals.on_policy.step_reason``)."""
    by_question: dict[str, list[TrajectoryRecord]] = {}
    for record in records:
        if record.status in _MODEL_ENDINGS and record.gold_answer is not None and record.steps:
            by_question.setdefault(record.question_id, []).append(record)
    for runs in by_question.values():
        exact = [r for r in runs if r.prediction is not None and exact_match(r.prediction, _gold(r))]
        failed = [r for r in runs if r.prediction is None or f1_score(r.prediction, _gold(r)) < FAILED_F1]
        for good in exact:
            for bad in failed:
                i = next(
                    (
                        i
                        for i, (a, b) in enumerate(zip(good.steps, bad.steps, strict=False))
                        if step_body(a) != step_body(b)
                    ),
                    None,
                )
                if i is None:  # one run is the other's beginning: they part at no step
                    continue
                chosen, rejected = good.steps[i], bad.steps[i]
                if chosen.action is None or chosen.error is not None or action_key(chosen) == action_key(rejected):
                    continue
                yield DPORecord(
                    question_id=good.question_id,
                    step=i,
                    kind="self_contrast",
                    reason=step_reason(rejected, chosen, good.steps[:i]),
                    prompt=good.to_messages(prompt_style, upto=i),
                    chosen=_assistant(step_body(chosen)),
                    rejected=_assistant(step_body(rejected)),
                    version=TRAINING_VERSION,
                    prompt_style=prompt_style,
                )
