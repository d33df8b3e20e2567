"""The trainer's commands: ``araft convert sft|dpo`` (trajectories to training records), ``araft
train sft|dpo`` and ``araft export merge|adapter``; ``add_parsers`` registers them on the ``araft``
command. ``train`` takes any config key as ``--key value`` after its own flags."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from araft_lc.cli import UserError
from finetune.launch import add_train_arguments

__all__ = ["add_parsers"]


def _read_trajectories(path: str, skip_bad: bool) -> Any:
    """The records of ``path``; a record whose steps ran a tool its own tools do not list is
    refused (its prompts would list other tools than its steps call), or skipped with ``skip_bad``."""
    from araft_lc.react.trajectory import read_trajectories

    bad: list[int] = []
    unlisted = 0
    try:
        for record in read_trajectories(path, skip_bad=skip_bad, bad=bad):
            tool = record.unlisted_tool()
            if tool is None:
                yield record
                continue
            if not skip_bad:
                listed = ", ".join(card.name for card in record.tool_cards())
                raise UserError(
                    f"{path}: record {record.question_id} calls tool {tool!r}, which its tools "
                    f"({listed}) do not list: record the run again with this araft (records keep "
                    "their tools), or pass --skip-bad to skip such records"
                )
            unlisted += 1
    except ValueError as e:
        raise UserError(f"{e}; pass --skip-bad to skip such lines") from None
    if bad:
        print(f"skipped {len(bad)} bad lines", file=sys.stderr)
    if unlisted:
        print(f"skipped {unlisted} records whose steps call tools they do not list", file=sys.stderr)


def _labeler(args: argparse.Namespace) -> Callable[[Any], Any]:
    """For ``--kinds on_policy``: the teacher's corrections of a student run."""
    from araft_lc.chat.model_spec import ModelSpec
    from evals.hotpotqa import load_questions
    from evals.on_policy import REASONS, corrections
    from evals.oracle import OracleChatModel
    from evals.teachers import load_model

    if not args.questions:
        raise UserError(
            "--kinds on_policy labels the student's runs with a teacher: pass --questions (the "
            "files the runs used) and --corpus"
        )
    questions = {q.id: q for path in args.questions for q in load_questions(path)}
    backend = None
    if args.teacher == "visible":
        if not args.corpus:
            raise UserError("the visible teacher searches an index: pass --corpus")
        from araft_lc.wiki.select import wikipedia_tool

        backend = wikipedia_tool(args.corpus).backend
    teacher = load_model(ModelSpec.parse(args.teacher), list(questions.values()), backend)
    # --teacher's choices are the teachers oracle and visible: an OracleChatModel and its subclass
    assert isinstance(teacher, OracleChatModel), f"--teacher {args.teacher} is no teacher"

    reasons = set(args.reasons.split(",")) if args.reasons else set(REASONS)
    if reasons - set(REASONS):
        raise UserError(
            f"unknown --reasons {','.join(sorted(reasons - set(REASONS)))}: choose from {','.join(REASONS)}"
        )

    def correct(record: Any) -> Any:
        q = questions.get(record.question_id)
        if q is None:
            raise UserError(f"question {record.question_id} is not in --questions: pass the files the runs used")
        return (fix for fix in corrections(record, q, teacher) if fix.reason in reasons)

    return correct


def cmd_convert(args: argparse.Namespace) -> int:
    from araft_lc.storage.atomic_file import open_atomically
    from finetune.records import contrast_records, dpo_records, failed_steps, on_policy_records, sft_records

    rejects = getattr(args, "rejects", None)
    for path in filter(None, [*args.trajectories, rejects]):
        if not Path(path).is_file():
            raise UserError(f"{path} does not exist: run `araft generate` first")
    if args.max_tokens is not None and not args.tokenizer:
        raise UserError("--max-tokens counts tokens: pass --tokenizer MODEL (a preset, hf:PATH or a folder)")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UserError(f"{out} exists: pass --force to replace it")
    tokenizer = None
    if args.tokenizer:
        from finetune.tokens import load_tokenizer, record_length

        try:
            tokenizer = load_tokenizer(args.tokenizer)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot load tokenizer {args.tokenizer!r}: {e}") from None
    kinds = args.kinds.split(",") if getattr(args, "kinds", None) else None
    failed = failed_steps(_read_trajectories(rejects, args.skip_bad)) if rejects else None
    if getattr(args, "reasons", None) and not (kinds and "on_policy" in kinds):
        raise UserError("--reasons picks among on_policy corrections: pass --kinds on_policy")
    student = next((k for k in ("on_policy", "self_contrast") if kinds and k in kinds), None)
    if student:
        assert kinds is not None  # student is one of kinds
        if len(kinds) > 1:
            raise UserError(
                f"{student} pairs come from the student's runs, the other kinds from the teacher's: "
                "convert them separately"
            )
    correct = _labeler(args) if student == "on_policy" else None
    contrast = student == "self_contrast"
    own = getattr(args, "own_runs", None)
    if own is not None and own < 1:
        raise UserError(f"--own-runs {own}: keep at least 1 run a question")
    selected = None  # the own runs' selection, for the summary
    counts: dict[str, int] = {}
    written: set[str] = set()  # rows already written: several files may hold the same run
    trajectories = dropped = duplicates = longest = total = 0
    unfinished = 0  # sft: runs that did not answer, which araft generate never keeps

    def row_batches() -> Any:
        nonlocal trajectories, selected, unfinished
        records: Iterator[Any] = (r for path in args.trajectories for r in _read_trajectories(path, args.skip_bad))
        if contrast:  # all runs of a question at once
            runs = list(records)
            trajectories = len(runs)
            yield contrast_records(runs, prompt_style=args.prompt_style)
            return
        if own is not None:  # all runs of a question at once
            from finetune.own_runs import own_runs

            selected = own_runs(records, own)
            trajectories = selected.runs
            records = iter(selected.kept)
        for record in records:
            if selected is None:
                trajectories += 1
            if args.kind == "sft":
                unfinished += record.status != "answered"
                yield sft_records(record, prompt_style=args.prompt_style, fmt=args.format, granularity=args.granularity)
            elif correct is not None:
                yield on_policy_records(record, correct(record), prompt_style=args.prompt_style)
            else:
                yield dpo_records(
                    record, prompt_style=args.prompt_style, failed=failed, **({"kinds": kinds} if kinds else {})
                )

    try:
        with open_atomically(out) as f:
            for rows in row_batches():
                for row in rows:
                    line = json.dumps(row, ensure_ascii=False)
                    if line in written:
                        duplicates += 1
                        continue
                    written.add(line)
                    if tokenizer is not None:
                        n = record_length(tokenizer, row)
                        longest = max(longest, n)
                        total += n
                        if args.max_tokens is not None and n > args.max_tokens:
                            dropped += 1
                            continue
                    kind = row.get("kind", getattr(args, "granularity", args.kind))
                    kind += f"/{row['reason']}" if "reason" in row else ""
                    counts[kind] = counts.get(kind, 0) + 1
                    f.write(line + "\n")
            if trajectories and not counts:  # nothing to train on: leave no empty file behind
                if dropped:
                    raise UserError(
                        f"all {dropped} {args.kind} records are longer than --max-tokens "
                        f"{args.max_tokens} (the longest has {longest} tokens): raise --max-tokens, "
                        "or use a shorter --prompt-style (zeroshot records are ~5x shorter)"
                    )
                if selected is not None:
                    raise UserError(f"no run to train on: {selected.summary()}")
                raise UserError(
                    f"the {trajectories} trajectories gave no {args.kind} records (for dpo: no step had "
                    "a rejected alternative of the kinds, or reasons, asked for)"
                )
    except ValueError as e:
        raise UserError(str(e)) from None
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    same = f"; {duplicates} exact duplicates left out" if duplicates else ""
    if selected is not None:
        print(selected.summary())
    if unfinished:
        print(
            f"note: {unfinished} of the {trajectories} trajectories did not answer, yet were converted as "
            "kept runs: for the student's runs (araft eval's), pass --own-runs N to keep the exact ones",
            file=sys.stderr,
        )
    print(f"{sum(counts.values())} {args.kind} records ({detail}) from {trajectories} trajectories{same} -> {out}")
    if tokenizer is not None:
        over = f"; dropped {dropped} over --max-tokens {args.max_tokens}" if args.max_tokens is not None else ""
        print(f"tokens: {total} in all, longest record {longest}{over}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from finetune.launch import Trainer, run

    train: Trainer  # train_sft or train_dpo, each taking its stage's config
    if args.stage == "sft":
        from finetune.sft import train_sft

        train = train_sft
    else:
        from finetune.dpo import train_dpo

        train = train_dpo
    return run(args.stage, train, args, args.overrides)


def cmd_export(args: argparse.Namespace) -> int:
    if args.what == "adapter":
        from finetune.ship import ship_adapter

        ship_adapter(args.adapter, args.out, evals=args.eval, note=args.note, base_id=args.base_id, force=args.force)
        return 0
    from finetune.export import merge_adapter

    merge_adapter(args.model, args.adapter, args.out, force=args.force)
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``convert``, ``train`` and ``export`` on the ``araft`` command's subparsers."""
    convert = sub.add_parser("convert", help="trajectories -> SFT or DPO training records")
    convert_sub = convert.add_subparsers(dest="kind", required=True, metavar="{sft,dpo}")
    for kind, what in (
        ("sft", "SFT records: TRL prompt/completion, Llama-2 text, or conversations"),
        ("dpo", "DPO records: TRL prompt/chosen/rejected, with a kind column"),
    ):
        c = convert_sub.add_parser(kind, help=what, description=what)
        c.add_argument(
            "trajectories",
            nargs="+",
            help="kept trajectories from araft generate (JSONL; several "
            "files are read in order, a record that is already "
            "written is left out)",
        )
        c.add_argument("--out", required=True, help="the records file to write (JSONL)")
        c.add_argument(
            "--prompt-style",
            default="fewshot",
            help="the prompt the records train: fewshot, zeroshot, zeroshot_turns or a YAML file",
        )
        if kind == "sft":
            c.add_argument(
                "--granularity",
                default="step",
                choices=["step", "trajectory"],
                help="one record per step (the original) or per trajectory (needs a layout: turns "
                "prompt style, e.g. zeroshot_turns)",
            )
            c.add_argument(
                "--own-runs",
                type=int,
                metavar="N",
                help="the trajectories are the student's own runs (araft eval's, several a question: "
                "expert iteration): keep those that answered exactly, every step parsed and no action "
                "repeated, distinct, at most N a question (finetune.own_runs)",
            )
            c.add_argument(
                "--format",
                default="prompt_completion",
                choices=["prompt_completion", "text"],
                help="TRL prompt/completion, or the original's Llama-2 text column",
            )
        else:
            c.add_argument(
                "--kinds",
                default="repeat_previous,answer_before_search,failed_run",
                help="comma-separated rejection kinds (also: malformed_action, wrong_answer); "
                "or on_policy alone, over the student's runs (araft eval's trajectories), "
                "with --questions; or self_contrast alone, over several runs of the student "
                "on each question (an exact run's step against a failed run's, where they part)",
            )
            c.add_argument(
                "--teacher",
                default="visible",
                choices=["visible", "oracle"],
                help="on_policy: the teacher whose step is chosen (default: %(default)s)",
            )
            c.add_argument(
                "--reasons",
                help="on_policy: keep only the corrections of these comma-separated "
                "reasons (evals.on_policy.REASONS; default: all)",
            )
            c.add_argument("--questions", nargs="+", help="on_policy: the HotpotQA files the student ran")
            c.add_argument(
                "--corpus", help="on_policy: the index the student searched (the visible teacher searches it too)"
            )
            c.add_argument(
                "--rejects", help="failed teacher runs (the *.rejects.jsonl of generate), for the failed_run kind"
            )
        c.add_argument("--tokenizer", help="count tokens with this model's tokenizer (a preset, hf:PATH or a folder)")
        c.add_argument("--max-tokens", type=int, help="drop (and count) records longer than this (needs --tokenizer)")
        c.add_argument("--skip-bad", action="store_true", help="skip (and count) malformed lines")
        c.add_argument("--force", action="store_true", help="replace an existing --out")
        c.set_defaults(func=cmd_convert)

    train = sub.add_parser("train", help="train LoRA adapters: sft, then dpo")
    train_sub = train.add_subparsers(dest="stage", required=True)
    for stage, what in (("sft", "SFT of a new adapter"), ("dpo", "DPO from the SFT adapter")):
        add_train_arguments(train_sub.add_parser(stage, help=what), stage)
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="write a merged model for serving, or an adapter to ship")
    export_sub = export.add_subparsers(dest="what", required=True)
    merge = export_sub.add_parser("merge", help="base weights + a LoRA adapter, merged (safetensors)")
    merge.add_argument("--model", required=True, help="the base: a preset, hf:PATH_OR_ID or a folder")
    merge.add_argument("--adapter", required=True, help="the adapter folder")
    merge.add_argument("--out", required=True, help="the folder to write")
    merge.add_argument("--force", action="store_true", help="replace an existing --out")
    ship = export_sub.add_parser(
        "adapter",
        help="an adapter to ship in the package: bf16 weights, its training provenance and evaluation",
        description="an adapter to ship in the package (araft_lc/adapters/NAME): bf16 weights, the base's "
        "Hub id, the training config, records' sha256 and summary, and eval.json from its evaluation runs",
    )
    ship.add_argument("--adapter", required=True, help="the folder araft train wrote")
    ship.add_argument(
        "--eval", nargs="+", required=True, help="the folders araft eval wrote of it (the halves of one evaluation)"
    )
    ship.add_argument("--note", required=True, help="what the evaluation was and how it compares, for eval.json")
    ship.add_argument("--base-id", help="the base's Hub id for adapter_config.json (default: known for presets)")
    ship.add_argument("--out", required=True, help="the folder to write")
    ship.add_argument("--force", action="store_true", help="replace an existing --out")
    export.set_defaults(func=cmd_export)
