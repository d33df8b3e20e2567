"""The evaluator's commands: ``araft generate`` (teacher trajectories), ``araft eval`` and
``araft report``; ``add_parsers`` registers them on the ``araft`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from araft_lc.models import add_model_flags
from araft_lc.presets import DEFAULT_MODEL

__all__ = ["add_parsers"]


def cmd_generate(args: argparse.Namespace) -> int:
    from araft_lc.graph import create_araft_agent
    from araft_lc.model_spec import ModelSpec
    from araft_lc.models import model_flags
    from araft_lc.prompt import load_prompt
    from araft_lc.tools.select import wikipedia_tool
    from evals.generate import generate, rejects_path
    from evals.hotpotqa import check_unique_ids, load_questions
    from evals.teachers import load_model

    questions = []
    for path in args.questions:
        questions.extend(load_questions(path))
    check_unique_ids(questions)  # before any model loads
    if args.limit is not None:
        questions = questions[: args.limit]
    spec = ModelSpec.parse(args.teacher)
    style = load_prompt(args.prompt or spec.prompt)
    spec.check_server()
    tool = wikipedia_tool(args.corpus, check_live=True, max_chars=args.observation_chars)
    teacher = load_model(spec, questions, tool.backend, **model_flags(args))
    agent = create_araft_agent(teacher, [tool], prompt=style, max_steps=args.max_steps,
                               max_seconds=args.max_seconds)
    producer = {"model": args.teacher, "prompt_version": style.version, "tool_backend": tool.backend.name,
                "max_steps": args.max_steps}
    out = Path(args.out)
    summary = generate(agent, questions, out, min_f1=args.min_f1, concurrency=args.concurrency,
                       producer=producer)
    print(f"tried {summary.tried}, kept {summary.kept} ({summary.rate:.1%}), errors {summary.errors}, "
          f"skipped {summary.skipped} already done, {summary.seconds:.1f} s -> {out}, {rejects_path(out)}")
    from araft_lc.trajectory import read_trajectories
    from evals.visible_teacher import imitability

    kept = imitability(read_trajectories(out)) if out.is_file() else None
    if kept and kept["searches"]:
        print(f"kept runs: {kept['searches']} searches, {kept['inferable']:.1%} of them spans of what the run "
              f"had seen (what a student can imitate); steps per run {kept['steps']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from araft_lc.graph import create_araft_agent
    from araft_lc.model_spec import ModelSpec
    from araft_lc.models import model_flags
    from araft_lc.prompt import load_prompt
    from araft_lc.tools.select import wikipedia_tool
    from evals.hotpotqa import check_leakage, check_unique_ids, load_questions, parse_levels, sample_questions
    from evals.teachers import load_model
    from evals.report import write_report
    from evals.runner import check_out_dir, evaluate

    pool = [q for path in args.questions for q in load_questions(path)]
    check_unique_ids(pool)  # before any model loads
    check_out_dir(args.out)
    questions = sample_questions(pool, levels=parse_levels(args.levels) if args.levels else None,
                                 limit=args.limit, seed=args.seed)
    check_leakage(questions, args.exclude or [])
    repeats = args.repeats
    if repeats > 1 and args.temperature == 0:
        print("--repeats: greedy decoding gives the same runs every time; running once "
              "(set --temperature above 0 to sample)", file=sys.stderr)
        repeats = 1
    spec = ModelSpec.parse(args.model)
    style = load_prompt(args.prompt or spec.prompt)
    spec.check_server()
    tool = wikipedia_tool(args.corpus, live_api=args.live_api, check_live=True, max_chars=args.observation_chars)
    model = load_model(spec, questions, tool.backend, adapter=args.adapter, load_in_4bit=False if args.no_4bit else None,
                       temperature=args.temperature, seed=args.seed, **model_flags(args))

    def agent_for_repeat(repeat: int) -> Any:
        # a teacher answers from the facts, deterministically: only a language model takes a seed
        seeded = model if spec.kind == "teacher" else model.model_copy(update={"seed": args.seed + repeat})
        return create_araft_agent(seeded, [tool], prompt=style, max_steps=args.max_steps,
                                  repetition_guard=args.repetition_guard, max_seconds=args.max_seconds)

    producer = {"label": args.label or Path(args.out).name, "model": args.model, "adapter": args.adapter,
                "prompt_version": style.version, "tool_backend": tool.backend.name, "max_steps": args.max_steps,
                "repetition_guard": args.repetition_guard, "temperature": args.temperature,
                "sample_seed": args.seed}
    print(f"evaluating {len(questions)} questions x {repeats} -> {args.out}", file=sys.stderr)
    summary = evaluate(agent_for_repeat, questions, args.out, repeats=repeats, concurrency=args.concurrency,
                       producer=producer)
    report = write_report(args.out, seconds=summary.seconds)
    stats = report["levels"]["all"]
    print(f"tried {summary.tried}, skipped {summary.skipped} already done, errors {summary.errors}, "
          f"{summary.seconds:.1f} s; F1 {stats['f1']['mean']:.1f}, EM {stats['em']['mean']:.1f} "
          f"-> {Path(args.out) / 'report.md'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from araft_lc.atomic_file import write_text_atomically
    from evals.report import compare

    table = compare(args.dirs, png=Path(args.out).with_suffix(".png") if args.out else None)
    if args.out:
        write_text_atomically(args.out, table)
    print(table, end="")
    return 0


def cmd_failures(args: argparse.Namespace) -> int:
    from araft_lc.atomic_file import write_text_atomically
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
    gen.add_argument("--questions", nargs="+", required=True, help="HotpotQA files (either format)")
    gen.add_argument("--teacher", required=True,
                     help="visible (searches only with words the student sees), oracle (searches the gold "
                          "titles), a preset, hf:PATH_OR_ID[+ADAPTER], or openai:MODEL@URL")
    gen.add_argument("--corpus", default=os.environ.get("ARAFT_CORPUS"),
                     help="an index or source file ($ARAFT_CORPUS; without it, live Wikipedia)")
    gen.add_argument("--out", required=True, help="kept trajectories (JSONL); the rest go to *.rejects.jsonl")
    gen.add_argument("--limit", type=int, help="the first N questions only")
    gen.add_argument("--min-f1", type=float, help="keep runs with F1 >= this (default: exact match)")
    gen.add_argument("--concurrency", type=int, default=1, help="questions run at once")
    gen.add_argument("--max-steps", type=int, default=5, help="model calls per question")
    gen.add_argument("--prompt", default=None,
                     help="prompt style or YAML file (default: the preset's own, else fewshot)")
    gen.add_argument("--observation-chars", type=int, default=600, help="a page's text is cut to this length")
    add_model_flags(gen)
    gen.set_defaults(func=cmd_generate)


    ev = sub.add_parser("eval", help="evaluate a model on HotpotQA questions; write trajectories and a report")
    ev.add_argument("--questions", nargs="+", required=True, help="HotpotQA files (either format)")
    ev.add_argument("--model", default=os.environ.get("ARAFT_MODEL", DEFAULT_MODEL),
                    help="a preset, hf:PATH[+ADAPTER], openai:MODEL@URL, oracle or visible ($ARAFT_MODEL; "
                         "default: %(default)s)")
    ev.add_argument("--adapter", help="a LoRA adapter folder (from araft train)")
    ev.add_argument("--no-4bit", action="store_true", help="load presets unquantised")
    ev.add_argument("--corpus", default=os.environ.get("ARAFT_CORPUS"), help="an index or source file")
    ev.add_argument("--live-api", help="the MediaWiki api.php URL for live Wikipedia")
    ev.add_argument("--levels", help="questions per level, e.g. easy=100,medium=100,hard=100")
    ev.add_argument("--limit", type=int, help="a seeded sample of N questions (without --levels)")
    ev.add_argument("--seed", type=int, default=0, help="sampling seed of the questions and the model")
    ev.add_argument("--exclude", nargs="+", help="refuse questions found in these training/trajectory files")
    ev.add_argument("--repeats", type=int, default=1, help="runs per question with seeds seed, seed+1, ...")
    ev.add_argument("--temperature", type=float, default=0.0, help="0 decodes greedily; above 0 samples")
    ev.add_argument("--concurrency", type=int, default=1, help="questions run at once (greedy calls batch)")
    ev.add_argument("--prompt", default=None,
                    help="prompt style or YAML file (default: the preset's own, else fewshot)")
    ev.add_argument("--max-steps", type=int, default=5, help="model calls per question")
    ev.add_argument("--repetition-guard", action="store_true", help="refuse an action already taken")
    ev.add_argument("--observation-chars", type=int, default=600, help="a page's text is cut to this length")
    ev.add_argument("--label", help="the run's name in reports (default: the --out folder's name)")
    ev.add_argument("--out", required=True, help="the run's folder (resumed if it exists)")
    add_model_flags(ev)
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
