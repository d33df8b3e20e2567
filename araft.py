"""The ``araft`` command: each package's own subcommands under one parser, one error policy.

- ``araft_lc.cli``: ``ask``, ``info``, ``corpus build|search`` (the agent)
- ``evals.cli``: ``generate``, ``eval``, ``report`` (runs over question sets)
- ``finetune.cli``: ``convert sft|dpo``, ``train sft|dpo``, ``export merge`` (training)

This module sits on top of all three, so none of them imports another's commands. User errors
end in one line on stderr (``araft: error: ...``) and exit code 2, never a traceback; so do the
machine's (a full or read-only disk, an output another run holds), with exit code 1.

    araft ask "..."            # the console script
    python -m araft ask "..."  # the same
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Optional, Sequence

from araft_lc import cli as agent_cli
from araft_lc.cli import user_errors
from araft_lc.storage.error_text import error_text
from araft_lc.version import __version__
from evals import cli as evals_cli
from finetune import cli as finetune_cli

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="araft", description="A small ReAct agent over Wikipedia.")
    parser.add_argument("--version", action="version", version=f"araft {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the libraries' progress bars and warnings (quiet by default)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for package in (agent_cli, evals_cli, finetune_cli):
        package.add_parsers(sub)
    _show_defaults(parser)
    return parser


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends with the option's default, when it has one worth stating."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        unstated = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "%(default)" in help_text or unstated or not action.option_strings:  # 0 and 0.0 are stated
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
    # A warning is one line, as errors are (a fallback from llama.cpp to torch, a prompt mismatch).
    warnings.formatwarning = lambda message, *_, **__: f"araft: warning: {message}\n"
    try:
        return args.func(args)
    except user_errors() as e:
        print(f"araft: error: {error_text(e, None, with_type=False)}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine's: a full or read-only disk, a held output, a missing folder
        message = f"{e.filename}: {e.strerror}" if e.strerror and e.filename else error_text(e, None, with_type=False)
        print(f"araft: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("araft: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
