"""The agent's own commands, ``araft ask``, ``araft info`` and ``araft corpus build|search``, and
the errors every ``araft`` command reports as the user's.

``add_parsers`` registers them; the ``araft`` module puts them beside the evaluator's and the
trainer's commands. User errors end in one line on stderr (``araft: error: ...``) and exit code
2, never a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from araft_lc.agent.settings import RunSettings, add_settings_flags, settings_from_args
from araft_lc.chat.presets import DEFAULT_MODEL

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler

__all__ = ["add_parsers", "UserError", "user_errors"]

EXAMPLE_QUESTION = "Fodder on My Wings is an album by a singer/pianist/songwriter born in which year ?"


class UserError(Exception):
    """A problem with what the user asked for; printed as one line."""


def user_errors() -> tuple[type[BaseException], ...]:
    """What the ``araft`` command prints as one line with exit code 2: the user's mistakes."""
    from araft_lc.wiki.corpus import CorpusError
    from araft_lc.wiki.index import IndexOpenError
    from araft_lc.wiki.live_wikipedia import WikipediaUnavailable

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
        from araft_lc.react.prompt import render_step, step_body
        from araft_lc.react.trajectory import Step

        for data in steps[self.printed :]:
            step = Step.from_dict(data)
            if not self.streamed:  # a model that does not stream: its step, whole
                self.out.write(step_body(step) if step.action else f"(unparsed output) {step.raw.strip()}")
            elif step.action is None:
                self.out.write("\n(not a Thought and an Action)")
            tail = render_step(step)[len(step_body(step)) :] if step.observation is not None else ""
            seconds = time.perf_counter() - self.step_start
            self.out.write(f"{tail}\n  [step {self.printed + 1}: {seconds:.1f} s]\n")
            self.out.flush()
            self.printed += 1
            self.streamed = False
            self.step_start = time.perf_counter()


def cmd_ask(args: argparse.Namespace) -> int:
    from langchain_core.messages import AIMessageChunk

    from araft_lc.agent.factory import build_agent, check_settings, settings_model, settings_tools

    settings = settings_from_args(RunSettings, args)
    question = " ".join(args.question.split())
    if not question:
        raise UserError('the question is empty: araft ask "Which magazine was started first, ...?"')
    if len(question) > settings.max_question_chars:  # before anything loads
        raise UserError(
            f"the question is {len(question):,} characters, more than --max-question-chars "
            f"{settings.max_question_chars:,}: ask a shorter one"
        )
    # The cheap checks first, the model's before the corpus's: nothing heavy loads for a typo.
    check_settings(settings)
    tools = settings_tools(settings)
    model = settings_model(settings)
    if getattr(args, "verbose", False):
        print(f"engine: {engine_line(model)}", file=sys.stderr, flush=True)
    # model and tool given, so the factory does not check the settings (nor ping a server) again
    agent = build_agent(settings, model=model, tools=tools)
    callbacks: list[BaseCallbackHandler] = []
    tracer = None
    if args.trace:
        from araft_lc.agent.tracing import JsonlTraceHandler
        from araft_lc.storage.jsonl_sink import repair_tail

        repair_tail(Path(args.trace))  # a line torn by a full disk in an earlier run
        tracer = JsonlTraceHandler(args.trace)
        callbacks.append(tracer)
    config: dict[str, Any] = {"callbacks": callbacks}
    recorder = None
    if args.json:  # the record is the recorder's, as in `araft eval` and `araft generate`
        from araft_lc.agent.provenance import provenance
        from araft_lc.agent.recorder import TrajectoryRecorder

        recorder = TrajectoryRecorder()
        callbacks.append(recorder)
        config["metadata"] = {
            "question_id": "ask-" + hashlib.sha1(question.encode()).hexdigest()[:12],
            "producer": provenance(settings, model, tools, agent.prompt_version),
        }
    # With --json, stdout holds the record alone and the live trace goes to stderr.
    live = sys.stderr if args.json else sys.stdout
    print(f"Question: {question}", file=live, flush=True)
    state: dict[str, Any] = {}
    show = _LiveSteps(live)
    start = time.perf_counter()
    try:
        for mode, data in agent.stream({"question": question}, config, stream_mode=["messages", "updates"]):
            if mode == "messages":
                chunk, meta = data
                if (
                    settings.samples == 1
                    and isinstance(chunk, AIMessageChunk)
                    and meta.get("langgraph_node") == "reason"
                ):
                    show.token(chunk.text)
                continue
            for node_update in data.values():
                if not node_update:
                    continue
                state.update(node_update)
                if settings.samples == 1:
                    show.steps(node_update.get("steps") or [])
                for run in node_update.get("gathered") or []:  # self-consistency: each run as it ends
                    print(
                        f"  [run {run['run']} ({'greedy' if run['run'] == 0 else 'sampled'}): "
                        f"{run['answer'] if run['answer'] is not None else 'no answer'}, {run['status']}, "
                        f"{len(run['steps'])} steps, {time.perf_counter() - start:.1f} s]",
                        file=live,
                        flush=True,
                    )
    except Exception as e:
        if isinstance(e, user_errors()):
            raise
        from araft_lc.storage.error_text import error_text
        from araft_lc.storage.write_error import WriteError, is_write_failure

        if tracer and is_write_failure(e):
            raise WriteError(args.trace, e) from None
        print(f"araft: error: the run stopped: {error_text(e)}", file=sys.stderr)
        return 1
    finally:
        if tracer:
            try:
                tracer.close()
            except OSError:
                pass  # its failed write has already stopped the run
    seconds = time.perf_counter() - start
    status, answer = state.get("status"), state.get("answer")
    if status == "context_limit" and not state.get("steps"):  # the question alone does not fit
        messages = state.get("messages") or []
        raise UserError(
            str(messages[-1].content).removeprefix("No answer: ").rstrip(".")
            if messages
            else "the question does not fit the model's context"
        )
    if state.get("vote"):
        ballot = state["vote"]
        votes = ", ".join(f"{a!r} {n}" for a, n in sorted(ballot["counts"].items(), key=lambda kv: -kv[1]))
        print(
            f"Vote ({ballot['rule']}, {len(state.get('runs') or [])} runs): {votes or 'no answers'}; "
            f"run {ballot['run']}'s answer",
            file=live,
        )
    print(f"Answer: {answer}" if answer is not None else "No answer.", file=live)
    print(f"(status: {status}, {len(state.get('steps', []))} steps, {seconds:.1f} s)", file=live, flush=True)
    if recorder is not None:
        [record] = recorder.records
        print(json.dumps(record.to_dict(), ensure_ascii=False))
    return 0


def engine_line(model: Any) -> str:
    """What runs ``model`` and why: its backend and the choice's reason (``AraftChatModel``), else
    the chat model's class (a server's, say)."""
    backend = getattr(model, "backend", None)
    if backend is None:
        return type(model).__name__
    return f"{backend} ({model.backend_reason})"


def cmd_info(args: argparse.Namespace) -> int:
    """Print the backends installed, what this CPU offers llama.cpp, and which engine runs the
    model (built for real, so the answer is the one ``ask`` would get)."""
    import importlib.metadata
    import platform

    from araft_lc.chat.model_spec import load_chat_model
    from araft_lc.runtime.llama_cpp.lib import AMX_FLAGS, advertises_amx, cpu_flags
    from araft_lc.version import __version__

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    print(f"araft {__version__}, Python {platform.python_version()}, {platform.machine()}")
    print(f"torch backend: torch {version('torch')}, transformers {version('transformers')}")
    print(f"llama.cpp backend: llama-cpp-python {version('llama-cpp-python')}")
    flags = cpu_flags()
    shown = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", *sorted(AMX_FLAGS)) if f in flags)
    print(
        f"CPU flags llama.cpp uses: {shown or 'none of avx2, avx512, vnni, amx'}; llama.cpp's extra buffer "
        f"types: {'off (the CPU advertises AMX)' if advertises_amx() else 'on'}"
    )
    start = time.perf_counter()
    model = load_chat_model(args.model, adapter=args.adapter, backend=args.backend)
    print(f"model {args.model}: {engine_line(model)}; built in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_corpus_build(args: argparse.Namespace) -> int:
    from araft_lc.wiki.index_engines import build

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UserError(f"{out} exists: pass --force to rebuild it, or choose another --out")

    def progress(n: int) -> None:
        print(f"\r{n:,} paragraphs read", end="", file=sys.stderr, flush=True)

    meta = build(args.sources, out, engine=args.engine, progress=progress)
    print(file=sys.stderr)
    print(
        f"{out}: {int(meta['pages']):,} pages from {int(meta['paragraphs_read']):,} paragraphs "
        f"in {meta['build_seconds']} s ({meta['engine']})"
    )
    return 0


def cmd_corpus_search(args: argparse.Namespace) -> int:
    from araft_lc.wiki.index_engines import open_index
    from araft_lc.wiki.wikipedia import LocalWikipedia, WikipediaTool

    index = open_index(args.index)
    tool = WikipediaTool(backend=LocalWikipedia(index), max_chars=args.observation_chars)
    print(tool.invoke(args.query))
    if args.top:
        for hit in index.lookup(args.query, k=args.top):
            score = "exact title" if hit.score == float("-inf") else f"bm25 {hit.score:.3f}"
            print(f"  {hit.title}\t{score}")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``ask`` and ``corpus build|search`` on the ``araft`` command's subparsers."""
    ask = sub.add_parser("ask", help="answer one question, printing each Thought/Action/Observation as it comes")
    ask.add_argument("question", nargs="?", default=EXAMPLE_QUESTION, help="the question to answer")
    ask.add_argument("--json", action="store_true", help="print the trajectory record as JSON on stdout")
    ask.add_argument("--trace", help="append a structured trace of every node, model and tool call (JSONL)")
    ask.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also say which engine runs the model and why (as araft -v ask)",
    )
    add_settings_flags(ask, RunSettings)
    ask.set_defaults(func=cmd_ask)

    info = sub.add_parser("info", help="which backends are installed, and which engine runs a model and why")
    info.add_argument("--model", default=DEFAULT_MODEL, help="the model to build: a preset, hf:PATH or a folder")
    info.add_argument("--adapter", help="a LoRA adapter folder on top of --model")
    info.add_argument("--backend", choices=("torch", "llama.cpp"), help="ask for this backend")
    info.set_defaults(func=cmd_info)

    corpus = sub.add_parser("corpus", help="build or inspect a local Wikipedia index")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="index HotpotQA files or {title, sentences|text} lines")
    build.add_argument("sources", nargs="+", help="HotpotQA .json/.jsonl, corpus .jsonl[.gz|.bz2]")
    build.add_argument("--out", required=True, help="the index to write: FILE.sqlite (fts5) or a folder (tantivy)")
    build.add_argument(
        "--engine",
        choices=("fts5", "tantivy"),
        default=None,
        help="fts5: one SQLite file, nothing to install; tantivy: a folder, fast free-text search "
        "at Wikipedia scale, pip install 'araft[index]' (default: fts5 for an --out named "
        "*.sqlite, else tantivy where installed, else fts5)",
    )
    build.add_argument("--force", action="store_true", help="replace an existing index")
    build.set_defaults(func=cmd_corpus_build)
    search = corpus_sub.add_parser("search", help="print what the tool would observe for QUERY")
    search.add_argument("index", help="an index built by araft corpus build (either engine)")
    search.add_argument("query", help="a title or a topic")
    search.add_argument("--top", type=int, default=0, help="also list the top K titles with scores")
    search.add_argument("--observation-chars", type=int, default=600, help="the observation is cut to this length")
    search.set_defaults(func=cmd_corpus_search)
