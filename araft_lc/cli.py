"""The ``araft`` command line: ``ask``, ``generate``, ``convert``, ``train``, ``eval``, ``report``,
``export``, ``corpus build|search``.

User errors end in one line on stderr (``araft: error: ...``) and exit code 2, never a traceback;
so do the machine's (a full or read-only disk, an output another run holds), with exit code 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from araft_lc.models import add_model_flags

__all__ = ["main"]

DEFAULT_MODEL = "smollm2-135m"
EXAMPLE_QUESTION = "Which magazine was started first, Arthur's Magazine or First for Women?"


class UserError(Exception):
    """A problem with what the user asked for; printed as one line."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from araft_lc.corpus import CorpusError
    from araft_lc.index import IndexOpenError
    from araft_lc.tools.live_wikipedia import WikipediaUnavailable

    return (UserError, ValueError, FileNotFoundError, CorpusError, IndexOpenError, WikipediaUnavailable)


class _LiveSteps:
    """Prints a run as it happens: each step's model text token by token, then its
    observation and how long the step took."""

    def __init__(self, out: Any):
        self.out = out
        self.printed = 0  # steps whose end has been printed
        self.streamed = False  # the model's text of the step under way has been printed
        self.step_start = time.perf_counter()

    def token(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.streamed = True

    def steps(self, steps: list[Any]) -> None:
        from araft_lc.prompt import render_step, step_body
        from araft_lc.trajectory import Step

        for data in steps[self.printed:]:
            step = Step.from_dict(data)
            if not self.streamed:  # a model that does not stream: its step, whole
                self.out.write(step_body(step) if step.action else f"(unparsed output) {step.raw.strip()}")
            elif step.action is None:
                self.out.write("\n(not a Thought and an Action)")
            tail = render_step(step)[len(step_body(step)):] if step.observation is not None else ""
            seconds = time.perf_counter() - self.step_start
            self.out.write(f"{tail}\n  [step {self.printed + 1}: {seconds:.1f} s]\n")
            self.out.flush()
            self.printed += 1
            self.streamed = False
            self.step_start = time.perf_counter()


def cmd_ask(args: argparse.Namespace) -> int:
    from langchain_core.messages import AIMessageChunk

    from araft_lc.graph import create_araft_agent
    from araft_lc.models import check_model, check_server, load_chat_model, model_flags
    from araft_lc.presets import preset_prompt
    from araft_lc.prompt import load_prompt
    from araft_lc.tools.select import wikipedia_tool
    from araft_lc.trajectory import Step, TrajectoryRecord

    question = " ".join(args.question.split())
    if not question:
        raise UserError("the question is empty: araft ask \"Which magazine was started first, ...?\"")
    style = load_prompt(args.prompt or preset_prompt(args.model) or "fewshot")
    # The cheap checks first, the model's before the corpus's: nothing heavy loads for a typo.
    check_model(args.model, args.adapter)
    check_server(args.model)
    tool = wikipedia_tool(args.corpus, live_api=args.live_api, check_live=True,
                          max_chars=args.observation_chars)
    model = load_chat_model(
        args.model, adapter=args.adapter, load_in_4bit=True if args.four_bit else (False if args.no_4bit else None),
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed, **model_flags(args),
    )
    agent = create_araft_agent(model, [tool], prompt=style, max_steps=args.max_steps,
                               repetition_guard=args.repetition_guard, max_seconds=args.max_seconds)
    callbacks = []
    tracer = None
    if args.trace:
        from araft_lc.jsonl_sink import repair_tail
        from araft_lc.tracing import JsonlTraceHandler

        repair_tail(Path(args.trace))  # a line torn by a full disk in an earlier run
        tracer = JsonlTraceHandler(args.trace)
        callbacks.append(tracer)
    # With --json, stdout holds the record alone and the live trace goes to stderr.
    live = sys.stderr if args.json else sys.stdout
    print(f"Question: {question}", file=live, flush=True)
    state: dict[str, Any] = {}
    show = _LiveSteps(live)
    start = time.perf_counter()
    try:
        for mode, data in agent.stream({"question": question}, {"callbacks": callbacks},
                                       stream_mode=["messages", "updates"]):
            if mode == "messages":
                chunk, meta = data
                if isinstance(chunk, AIMessageChunk) and meta.get("langgraph_node") == "reason":
                    show.token(chunk.text)
                continue
            for node_update in data.values():
                if node_update:
                    state.update(node_update)
                    show.steps(node_update.get("steps") or [])
    except Exception as e:  # noqa: BLE001 - a model server's failure ends the run in one line
        if isinstance(e, _user_errors()):
            raise
        from araft_lc.write_error import WriteError, is_write_failure

        if tracer and is_write_failure(e):
            raise WriteError(args.trace, e) from None
        print(f"araft: error: the run stopped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        return 1
    finally:
        if tracer:
            try:
                tracer.close()
            except OSError:
                pass  # its failed write has already stopped the run
    seconds = time.perf_counter() - start
    status, answer = state.get("status"), state.get("answer")
    print(f"Answer: {answer}" if answer is not None else "No answer.", file=live)
    print(f"(status: {status}, {len(state.get('steps', []))} steps, {seconds:.1f} s)", file=live, flush=True)
    if args.json:
        record = TrajectoryRecord(
            question_id="ask-" + hashlib.sha1(question.encode()).hexdigest()[:12],
            question=question, status=status, prediction=answer,
            steps=[Step.from_dict(s) for s in state.get("steps", [])],
            producer={
                "model": args.model, "adapter": args.adapter, "prompt_version": style.version,
                "tool_backend": tool.backend.name, "seed": args.seed, "temperature": args.temperature,
                "max_steps": args.max_steps, "repetition_guard": args.repetition_guard,
            },
        )
        print(json.dumps(record.to_dict(), ensure_ascii=False))
    return 0


def cmd_corpus_build(args: argparse.Namespace) -> int:
    from araft_lc.index import build_index

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UserError(f"{out} exists: pass --force to rebuild it, or choose another --out")

    def progress(n: int) -> None:
        print(f"\r{n:,} paragraphs read", end="", file=sys.stderr, flush=True)

    meta = build_index(args.sources, out, progress=progress)
    print(file=sys.stderr)
    print(f"{out}: {int(meta['pages']):,} pages from {int(meta['paragraphs_read']):,} paragraphs "
          f"in {meta['build_seconds']} s")
    return 0


def cmd_corpus_search(args: argparse.Namespace) -> int:
    from araft_lc.index import WikiIndex
    from araft_lc.tools.wikipedia import LocalWikipedia, WikipediaTool

    index = WikiIndex(args.index)
    tool = WikipediaTool(backend=LocalWikipedia(index), max_chars=args.observation_chars)
    print(tool.invoke(args.query))
    if args.top:
        for hit in index.lookup(args.query, k=args.top):
            score = "exact title" if hit.score == float("-inf") else f"bm25 {hit.score:.3f}"
            print(f"  {hit.title}\t{score}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from araft_lc.generate import generate, rejects_path
    from araft_lc.graph import create_araft_agent
    from araft_lc.models import check_server, load_chat_model, model_flags
    from araft_lc.prompt import load_prompt
    from araft_lc.tools.select import wikipedia_tool
    from evals.hotpotqa import check_unique_ids, load_questions

    questions = []
    for path in args.questions:
        questions.extend(load_questions(path))
    check_unique_ids(questions)  # before any model loads
    if args.limit is not None:
        questions = questions[: args.limit]
    style = load_prompt(args.prompt)
    check_server(args.teacher)
    tool = wikipedia_tool(args.corpus, check_live=True, max_chars=args.observation_chars)
    teacher = load_chat_model(args.teacher, questions=questions, **model_flags(args))
    agent = create_araft_agent(teacher, [tool], prompt=style, max_steps=args.max_steps,
                               max_seconds=args.max_seconds)
    producer = {"model": args.teacher, "prompt_version": style.version, "tool_backend": tool.backend.name,
                "max_steps": args.max_steps}
    out = Path(args.out)
    summary = generate(agent, questions, out, min_f1=args.min_f1, concurrency=args.concurrency,
                       producer=producer)
    print(f"tried {summary.tried}, kept {summary.kept} ({summary.rate:.1%}), errors {summary.errors}, "
          f"skipped {summary.skipped} already done, {summary.seconds:.1f} s -> {out}, {rejects_path(out)}")
    return 0


def _read_trajectories(path: str, skip_bad: bool) -> Any:
    from araft_lc.trajectory import read_trajectories

    bad: list[int] = []
    try:
        yield from read_trajectories(path, skip_bad=skip_bad, bad=bad)
    except ValueError as e:
        raise UserError(f"{e}; pass --skip-bad to skip such lines") from None
    if bad:
        print(f"skipped {len(bad)} bad lines", file=sys.stderr)


def cmd_convert(args: argparse.Namespace) -> int:
    from araft_lc.atomic_file import open_atomically
    from finetune.records import dpo_records, failed_steps, sft_records

    rejects = getattr(args, "rejects", None)
    for path in filter(None, [args.trajectories, rejects]):
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
    counts: dict[str, int] = {}
    trajectories = dropped = longest = total = 0
    try:
        with open_atomically(out) as f:
            for record in _read_trajectories(args.trajectories, args.skip_bad):
                trajectories += 1
                if args.kind == "sft":
                    rows = sft_records(record, prompt_style=args.prompt_style, fmt=args.format,
                                       granularity=args.granularity)
                else:
                    rows = dpo_records(record, prompt_style=args.prompt_style, failed=failed,
                                       **({"kinds": kinds} if kinds else {}))
                for row in rows:
                    if tokenizer is not None:
                        n = record_length(tokenizer, row)
                        longest = max(longest, n)
                        total += n
                        if args.max_tokens is not None and n > args.max_tokens:
                            dropped += 1
                            continue
                    kind = row.get("kind", getattr(args, "granularity", args.kind))
                    counts[kind] = counts.get(kind, 0) + 1
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            if trajectories and not counts:  # nothing to train on: leave no empty file behind
                if dropped:
                    raise UserError(f"all {dropped} {args.kind} records are longer than --max-tokens "
                                    f"{args.max_tokens} (the longest has {longest} tokens): raise --max-tokens, "
                                    "or use a shorter --prompt-style (zeroshot records are ~5x shorter)")
                raise UserError(f"the {trajectories} trajectories gave no {args.kind} records (for dpo: no step had "
                                "a rejected alternative of the kinds asked for)")
    except ValueError as e:
        raise UserError(str(e)) from None
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{sum(counts.values())} {args.kind} records ({detail}) from {trajectories} trajectories -> {out}")
    if tokenizer is not None:
        over = f"; dropped {dropped} over --max-tokens {args.max_tokens}" if args.max_tokens is not None else ""
        print(f"tokens: {total} in all, longest record {longest}{over}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from finetune.launch import run

    return run(args.stage, args, args.overrides)


def cmd_export(args: argparse.Namespace) -> int:
    from finetune.export import merge_adapter

    merge_adapter(args.model, args.adapter, args.out, force=args.force)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from araft_lc import __version__

    parser = argparse.ArgumentParser(prog="araft", description="A small ReAct agent over Wikipedia.")
    parser.add_argument("--version", action="version", version=f"araft {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the libraries' progress bars and warnings (quiet by default)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = sub.add_parser("ask", help="answer one question, printing each Thought/Action/Observation as it comes")
    ask.add_argument("question", nargs="?", default=EXAMPLE_QUESTION, help="the question to answer")
    ask.add_argument("--model", default=os.environ.get("ARAFT_MODEL", DEFAULT_MODEL),
                     help=f"a preset ({', '.join(_preset_names())}), hf:PATH_OR_ID[+ADAPTER], a local folder, "
                          "or openai:MODEL@BASE_URL ($ARAFT_MODEL)")
    ask.add_argument("--adapter", help="a LoRA adapter folder to apply on top of --model")
    ask.add_argument("--4bit", dest="four_bit", action="store_true",
                     help="quantise the model to 4-bit NF4 (bitsandbytes, CUDA only)")
    ask.add_argument("--no-4bit", action="store_true",
                     help="load a 4-bit preset (araft-sft, araft-dpo) unquantised, e.g. on a CPU")
    ask.add_argument("--corpus", default=os.environ.get("ARAFT_CORPUS"),
                     help="a local index, or a source file indexed once into the cache "
                          "($ARAFT_CORPUS; without it, live Wikipedia)")
    ask.add_argument("--live-api", help="the MediaWiki api.php URL for live Wikipedia")
    ask.add_argument("--prompt", default=None,
                     help="prompt style (fewshot, zeroshot, zeroshot_turns) or a YAML file (default: the "
                          "model's own, else fewshot)")
    ask.add_argument("--max-steps", type=int, default=5, help="model calls per question, parse errors included")
    ask.add_argument("--repetition-guard", action="store_true",
                     help="answer a repeated action with a note instead of running it again")
    ask.add_argument("--max-new-tokens", type=int, default=256, help="tokens the model may write per step")
    ask.add_argument("--temperature", type=float, default=0.0, help="0 decodes greedily; above 0 samples")
    ask.add_argument("--seed", type=int, help="the sampling seed (with --temperature above 0)")
    ask.add_argument("--observation-chars", type=int, default=600,
                     help="a page's text is cut to this many characters, on a sentence boundary")
    ask.add_argument("--json", action="store_true", help="print the trajectory record as JSON on stdout")
    ask.add_argument("--trace", help="append a structured trace of every node, model and tool call (JSONL)")
    add_model_flags(ask)
    ask.set_defaults(func=cmd_ask)

    gen = sub.add_parser("generate", help="run a teacher over questions and keep correct trajectories")
    gen.add_argument("--questions", nargs="+", required=True, help="HotpotQA files (either format)")
    gen.add_argument("--teacher", required=True, help="oracle, a preset, hf:PATH_OR_ID[+ADAPTER], openai:MODEL@URL")
    gen.add_argument("--corpus", default=os.environ.get("ARAFT_CORPUS"),
                     help="an index or source file ($ARAFT_CORPUS; without it, live Wikipedia)")
    gen.add_argument("--out", required=True, help="kept trajectories (JSONL); the rest go to *.rejects.jsonl")
    gen.add_argument("--limit", type=int, help="the first N questions only")
    gen.add_argument("--min-f1", type=float, help="keep runs with F1 >= this (default: exact match)")
    gen.add_argument("--concurrency", type=int, default=1, help="questions run at once")
    gen.add_argument("--max-steps", type=int, default=5, help="model calls per question")
    gen.add_argument("--prompt", default="fewshot", help="prompt style or YAML file")
    gen.add_argument("--observation-chars", type=int, default=600, help="a page's text is cut to this length")
    add_model_flags(gen)
    gen.set_defaults(func=cmd_generate)

    convert = sub.add_parser("convert", help="trajectories -> SFT or DPO training records")
    convert_sub = convert.add_subparsers(dest="kind", required=True, metavar="{sft,dpo}")
    for kind, what in (("sft", "SFT records: TRL prompt/completion, Llama-2 text, or conversations"),
                       ("dpo", "DPO records: TRL prompt/chosen/rejected, with a kind column")):
        c = convert_sub.add_parser(kind, help=what, description=what)
        c.add_argument("trajectories", help="kept trajectories from araft generate (JSONL)")
        c.add_argument("--out", required=True, help="the records file to write (JSONL)")
        c.add_argument("--prompt-style", default="fewshot",
                       help="the prompt the records train: fewshot, zeroshot, zeroshot_turns or a YAML file")
        if kind == "sft":
            c.add_argument("--granularity", default="step", choices=["step", "trajectory"],
                           help="one record per step (the original) or per trajectory (needs a layout: turns "
                                "prompt style, e.g. zeroshot_turns)")
            c.add_argument("--format", default="prompt_completion", choices=["prompt_completion", "text"],
                           help="TRL prompt/completion, or the original's Llama-2 text column")
        else:
            c.add_argument("--kinds", default="repeat_previous,answer_before_search,failed_run",
                           help="comma-separated rejection kinds (also: malformed_action)")
            c.add_argument("--rejects", help="failed teacher runs (the *.rejects.jsonl of generate), for the "
                                             "failed_run kind")
        c.add_argument("--tokenizer", help="count tokens with this model's tokenizer (a preset, hf:PATH or a folder)")
        c.add_argument("--max-tokens", type=int, help="drop (and count) records longer than this (needs --tokenizer)")
        c.add_argument("--skip-bad", action="store_true", help="skip (and count) malformed lines")
        c.add_argument("--force", action="store_true", help="replace an existing --out")
        c.set_defaults(func=cmd_convert)

    from finetune.launch import add_train_arguments

    train = sub.add_parser("train", help="train LoRA adapters: sft, then dpo")
    train_sub = train.add_subparsers(dest="stage", required=True)
    for stage, what in (("sft", "SFT of a new adapter"), ("dpo", "DPO from the SFT adapter")):
        add_train_arguments(train_sub.add_parser(stage, help=what), stage)
    train.set_defaults(func=cmd_train)

    from evals.cli import add_eval_parsers

    add_eval_parsers(sub)

    export = sub.add_parser("export", help="write a merged model for serving")
    export_sub = export.add_subparsers(dest="what", required=True)
    merge = export_sub.add_parser("merge", help="base weights + a LoRA adapter, merged (safetensors)")
    merge.add_argument("--model", required=True, help="the base: a preset, hf:PATH_OR_ID or a folder")
    merge.add_argument("--adapter", required=True, help="the adapter folder")
    merge.add_argument("--out", required=True, help="the folder to write")
    merge.add_argument("--force", action="store_true", help="replace an existing --out")
    export.set_defaults(func=cmd_export)

    corpus = sub.add_parser("corpus", help="build or inspect a local Wikipedia index")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="index HotpotQA files or {title, sentences|text} lines")
    build.add_argument("sources", nargs="+", help="HotpotQA .json/.jsonl, corpus .jsonl[.gz|.bz2]")
    build.add_argument("--out", required=True, help="the index file to write (FILE.sqlite)")
    build.add_argument("--force", action="store_true", help="replace an existing index")
    build.set_defaults(func=cmd_corpus_build)
    search = corpus_sub.add_parser("search", help="print what the tool would observe for QUERY")
    search.add_argument("index", help="an index built by araft corpus build")
    search.add_argument("query", help="a title or a topic")
    search.add_argument("--top", type=int, default=0, help="also list the top K titles with scores")
    search.add_argument("--observation-chars", type=int, default=600, help="the observation is cut to this length")
    search.set_defaults(func=cmd_corpus_search)
    _show_defaults(parser)
    return parser


def _preset_names() -> list[str]:
    from araft_lc.presets import PRESETS

    return list(PRESETS)


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends with the option's default, when it has one worth stating."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "%(default)" in help_text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return help_text
        return help_text + " (default: %(default)s)"


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every parser of the tree states each option's default in its help."""
    parser.formatter_class = _DefaultsFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _show_defaults(child)


def quiet_libraries() -> None:
    """No progress bars or advisory warnings from transformers, huggingface_hub and datasets on
    a cached load (``-v`` keeps them); our own progress and errors still print."""
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for module in ("transformers", "peft", "trl", "torch", "accelerate", "huggingface_hub", "langchain"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    if not args.verbose:
        quiet_libraries()
    if getattr(args, "max_steps", 1) < 1:
        print("araft: error: --max-steps must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except _user_errors() as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"araft: error: {message}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine's: a full or read-only disk, a held output, a missing folder
        message = f"{e.filename}: {e.strerror}" if e.strerror and e.filename else str(e)
        print(f"araft: error: {message.splitlines()[0] if message else type(e).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("araft: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
