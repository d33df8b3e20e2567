"""The evaluator's commands: ``araft generate`` (teacher trajectories), ``araft eval`` and
``araft report``; ``add_parsers`` registers them on the ``araft`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from araft_lc.agent.settings import add_settings_flags, check_resumable, settings_from_args
from araft_lc.storage.config_file import ConfigError
from evals.settings import SETTINGS, EvalSettings, GenerateSettings, generate_settings_path

__all__ = ["add_parsers"]


def cmd_generate(args: argparse.Namespace) -> int:
    from araft_lc.agent.factory import build_agent, settings_tools, wikipedia_of
    from araft_lc.agent.provenance import provenance
    from araft_lc.react.prompt import load_prompt
    from evals.generate import generate, kept_by, rejects_path
    from evals.hotpotqa import Question, check_unique_ids, load_questions
    from evals.teachers import load_model

    settings = settings_from_args(GenerateSettings, args)
    questions: list[Question] = []
    for path in settings.questions:
        questions.extend(load_questions(path))
    check_unique_ids(questions)  # before any model loads
    check_resumable(settings, generate_settings_path(settings.out))
    if settings.limit is not None:
        questions = questions[: settings.limit]
    spec = settings.spec
    for option, value, default in (
        ("order", settings.order, "question"),
        ("thoughts", settings.thoughts, "first_sentence"),
    ):
        if value != default and spec.kind != "teacher":
            raise ConfigError(f"--{option} {value} is for a teacher (oracle, visible), not {settings.model!r}")
    if settings.order == "reversed":
        comparisons = [q for q in questions if q.type == "comparison"]
        print(
            f"--order reversed: the {len(comparisons)} comparison questions of {len(questions)} (a bridge "
            "question is read in one order only)",
            file=sys.stderr,
        )
        questions = comparisons
    if settings.prompt:
        load_prompt(settings.prompt)  # a typo fails before anything loads
    spec.check_server()
    tools = settings_tools(settings)
    wiki = wikipedia_of(tools)
    teacher = load_model(
        spec,
        questions,
        wiki.backend if wiki else None,
        order=settings.order,
        thoughts=settings.thoughts,
        **settings.model_options(),
    )
    agent = build_agent(settings, model=teacher, tools=tools)
    producer = provenance(settings, teacher, tools, agent.prompt_version)
    out = Path(settings.out)
    summary = generate(
        agent,
        questions,
        out,
        min_f1=settings.min_f1,
        concurrency=settings.concurrency,
        producer=producer,
        settings=settings,
    )
    print(
        f"tried {summary.tried}, kept {summary.kept} ({summary.rate:.1%}), errors {summary.errors}, "
        f"skipped {summary.skipped} already done, {summary.seconds:.1f} s -> {out}, {rejects_path(out)}"
    )
    for key, counts in kept_by(questions, out).items():
        if len(counts) > 1:
            print(
                f"kept by {key}: "
                + ", ".join(f"{name} {k}/{n} ({k / n:.1%})" for name, (k, n) in sorted(counts.items()))
            )
    from araft_lc.react.trajectory import read_trajectories
    from evals.visible_teacher import imitability

    kept = imitability(read_trajectories(out)) if out.is_file() else None
    if kept and kept["searches"]:
        print(
            f"kept runs: {kept['searches']} searches, {kept['inferable']:.1%} of them spans of what the run "
            f"had seen (what a student can imitate); steps per run {kept['steps']}"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from araft_lc.agent.factory import build_agent, settings_tools, wikipedia_of
    from araft_lc.agent.provenance import provenance
    from araft_lc.react.prompt import load_prompt
    from evals.hotpotqa import check_leakage, check_unique_ids, load_questions, parse_levels, sample_questions
    from evals.report import write_report
    from evals.runner import check_out_dir, evaluate
    from evals.teachers import load_model

    settings = settings_from_args(EvalSettings, args)
    pool = [q for path in settings.questions for q in load_questions(path)]
    check_unique_ids(pool)  # before any model loads
    check_out_dir(settings.out)
    check_resumable(settings, Path(settings.out) / SETTINGS)
    questions = sample_questions(
        pool,
        levels=parse_levels(settings.levels) if settings.levels else None,
        limit=settings.limit,
        seed=settings.seed,
    )
    check_leakage(questions, settings.exclude or [])
    repeats = settings.repeats
    if repeats > 1 and settings.temperature == 0:
        print(
            "--repeats: greedy decoding gives the same runs every time; running once "
            "(set --temperature above 0 to sample)",
            file=sys.stderr,
        )
        repeats = 1
    spec = settings.spec
    if settings.prompt:
        load_prompt(settings.prompt)  # a typo fails before anything loads
    spec.check_server()
    tools = settings_tools(settings)
    wiki = wikipedia_of(tools)
    model = load_model(spec, questions, wiki.backend if wiki else None, **settings.model_options())

    def agent_for_repeat(repeat: int) -> Any:
        # a teacher answers from the facts, deterministically: only a language model takes a seed
        seeded = model if spec.kind == "teacher" else model.model_copy(update={"seed": settings.seed + repeat})
        return build_agent(settings, model=seeded, tools=tools)

    producer = {
        "label": settings.label or Path(settings.out).name,
        **provenance(settings, model, tools, agent_for_repeat(0).prompt_version),
    }
    print(f"evaluating {len(questions)} questions x {repeats} -> {settings.out}", file=sys.stderr)
    summary = evaluate(
        agent_for_repeat,
        questions,
        settings.out,
        repeats=repeats,
        concurrency=settings.concurrency,
        producer=producer,
        settings=settings,
    )
    report = write_report(settings.out, seconds=summary.seconds)
    stats = report["levels"]["all"]
    print(
        f"tried {summary.tried}, skipped {summary.skipped} already done, errors {summary.errors}, "
        f"{summary.seconds:.1f} s; F1 {stats['f1']['mean']:.1f}, EM {stats['em']['mean']:.1f} "
        f"-> {Path(settings.out) / 'report.md'}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from araft_lc.storage.atomic_file import write_text_atomically
    from evals.report import compare

    table = compare(args.dirs, png=Path(args.out).with_suffix(".png") if args.out else None)
    if args.out:
        write_text_atomically(args.out, table)
    print(table, end="")
    return 0


def cmd_failures(args: argparse.Namespace) -> int:
    from araft_lc.storage.atomic_file import write_text_atomically
    from evals.failures import count_failures, failures_table
    from evals.hotpotqa import load_questions
    from evals.runner import read_records

    questions = {q.id: q for path in args.questions for q in load_questions(path)}
    # a folder without trajectories, or a run over other questions: a ValueError, one line
    runs = [count_failures(Path(d).name, read_records(d), questions) for d in args.dirs]
    table = failures_table(runs)
    if args.out:
        write_text_atomically(args.out, table)
    print(table, end="")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``generate``, ``eval`` and ``report`` on the ``araft`` command's subparsers."""
    gen = sub.add_parser("generate", help="run a teacher over questions and keep correct trajectories")
    add_settings_flags(gen, GenerateSettings, names={"model": ("--teacher", "--model")})
    gen.set_defaults(func=cmd_generate)

    ev = sub.add_parser("eval", help="evaluate a model on HotpotQA questions; write trajectories and a report")
    add_settings_flags(ev, EvalSettings)
    ev.set_defaults(func=cmd_eval)

    rep = sub.add_parser("report", help="several evaluation runs side by side")
    rep.add_argument("dirs", nargs="+", help="folders written by araft eval")
    rep.add_argument("--out", help="also write the table to this .md file and a bar chart beside it (.png)")
    rep.set_defaults(func=cmd_report)

    fail = sub.add_parser("failures", help="why runs failed: one cause per run, counted side by side")
    fail.add_argument("dirs", nargs="+", help="folders written by araft eval")
    fail.add_argument("--questions", nargs="+", required=True, help="the HotpotQA files the runs used")
    fail.add_argument("--out", help="also write the tables to this .md file")
    fail.set_defaults(func=cmd_failures)
