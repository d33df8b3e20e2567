"""Run settings: what ``araft ask``, ``araft generate`` and ``araft eval`` share, as one dataclass
whose fields carry their help and their one default.

- ``add_settings_flags(parser, cls)`` adds ``--config FILE.yaml`` and a flag per field
  (``max_new_tokens``: ``--max-new-tokens``).
- ``settings_from_args(cls, args)`` resolves them: each field's default (``$ARAFT_MODEL`` and
  ``$ARAFT_CORPUS`` where set), then the ``--config`` file, then the flags given on the command line.
- ``settings_from_env(cls)`` resolves them for the LangGraph server, which takes no flags: each
  field's default, then the file ``$ARAFT_CONFIG`` names, then ``$ARAFT_<FIELD>`` variables
  (``ARAFT_MAX_SECONDS=120``). The same defaults as ``araft ask``, so the server runs its agent.
- A settings object checks its values when it is made (``check_values``, in ``__post_init__``), so
  nothing downstream checks them again; ``check`` adds the fields a command needs. ``spec`` is
  the model spec, parsed once for the run.
- ``save_settings(settings, path)`` writes the resolved settings beside a run's outputs, so that
  ``--config`` on that file runs it again; an output started with other settings is not resumed.

    araft eval --config runs/smollm2/settings.yaml --concurrency 4
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Optional, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from araft_lc.agent.vote import VOTE_RULES
from araft_lc.chat.model_spec import ModelSpec
from araft_lc.chat.presets import DEFAULT_MODEL, PRESETS
from araft_lc.react.bounds import (
    MAX_NEW_TOKENS,
    MAX_QUESTION_CHARS,
    MAX_SECONDS,
    MAX_STEPS,
    OBSERVATION_CHARS,
    TOOL_TIMEOUT,
    check_bounds,
)
from araft_lc.storage.config_file import ConfigError, checked_values, config_field, field_default, read_config

__all__ = [
    "RunSettings",
    "add_settings_flags",
    "settings_from_args",
    "settings_from_env",
    "env_name",
    "CONFIG_ENV",
    "check_resumable",
    "save_settings",
    "settings_yaml",
]


@dataclass
class RunSettings:
    """How a model runs the agent on a question: the model, the prompt, decoding, the tool, limits.

    ``araft ask`` runs on these; ``generate`` and ``eval`` add their questions and outputs.
    """

    model: str = config_field(
        help=f"a preset ({', '.join(PRESETS)}), hf:PATH_OR_ID[+ADAPTER], a local folder, "
        "openai:MODEL@BASE_URL, or for generate and eval the oracle or visible teacher ($ARAFT_MODEL)",
        factory=lambda: os.environ.get("ARAFT_MODEL") or DEFAULT_MODEL,
    )
    adapter: Optional[str] = config_field(None, "a LoRA adapter folder (from araft train) to apply on top of --model")
    load_in_4bit: Optional[bool] = config_field(
        None,
        "quantise the model to 4-bit NF4 (null: as the preset says)",
        switches={
            "--4bit": (True, "quantise the model to 4-bit NF4 (bitsandbytes, CUDA only)"),
            "--no-4bit": (False, "load a 4-bit preset (araft-sft, araft-dpo) unquantised, e.g. on a CPU"),
        },
    )
    prompt: Optional[str] = config_field(
        None, "prompt style (fewshot, zeroshot, zeroshot_turns) or a YAML file (default: the model's own, else fewshot)"
    )
    max_steps: int = config_field(MAX_STEPS, "model calls per question, parse errors included")
    max_new_tokens: int = config_field(MAX_NEW_TOKENS, "tokens the model may write per step")
    temperature: float = config_field(0.0, "0 decodes greedily; above 0 samples")
    seed: int = config_field(0, "the sampling seed (eval: also of the question sample; repeat r runs with seed + r)")
    observation_chars: int = config_field(
        OBSERVATION_CHARS, "every observation is cut to this many characters (a page's text on a sentence boundary)"
    )
    repetition_guard: bool = config_field(False, "answer a repeated action with a note instead of running it again")
    samples: int = config_field(
        1,
        "runs per question: 1 greedy; K > 1 adds K-1 runs sampled at "
        "--sample-temperature and answers by vote (self-consistency)",
    )
    sample_temperature: float = config_field(0.7, "the sampled runs' temperature (with --samples above 1)")
    batch_size: int = config_field(
        8,
        "model calls a local model decodes together at most (concurrent questions, "
        "and with --samples each question's runs)",
    )
    backend: Optional[str] = config_field(
        None,
        "how a local model runs: torch or llama.cpp (null: llama.cpp where the model ships as a GGUF, "
        "runs on a CPU and llama-cpp-python is installed, else torch)",
    )
    vote: str = config_field(
        "grounded",
        "how the runs' answers are chosen (with --samples above 1): grounded "
        "(only answers found in their run's observations count) or majority",
    )
    corpus: Optional[str] = config_field(
        help="a local index, or a source file indexed once into the cache ($ARAFT_CORPUS; without it, live Wikipedia)",
        factory=lambda: os.environ.get("ARAFT_CORPUS") or None,
    )
    live_api: Optional[str] = config_field(None, "the MediaWiki api.php URL for live Wikipedia")
    tools: list[str] = config_field(
        [],
        "more tools, each MODULE:ATTRIBUTE naming a LangChain tool, a list of tools or a function returning "
        "them ($ARAFT_TOOLS: comma-separated)",
        flags=("--tool",),
    )
    mcp_config: Optional[str] = config_field(
        None, "a JSON or YAML file of MCP servers whose tools the agent also gets (langchain-mcp-adapters)"
    )
    wikipedia: bool = config_field(
        True,
        "give the agent the Wikipedia tool",
        switches={"--no-wikipedia": (False, "leave the Wikipedia tool out: only --tool and --mcp-config tools")},
    )
    max_seconds: float = config_field(
        MAX_SECONDS, "wall time per question; later steps are not started, and a tool call is cut off at it"
    )
    tool_timeout: float = config_field(
        TOOL_TIMEOUT, "seconds a tool call may take (an async tool is cancelled, a sync one abandoned)"
    )
    max_question_chars: int = config_field(MAX_QUESTION_CHARS, "a longer question is refused")
    request_timeout: float = config_field(120.0, "seconds per request to an openai: server")
    request_retries: int = config_field(2, "retries of a failed request to an openai: server")
    trust_remote_code: bool = config_field(
        False, "run Python code shipped in a model folder (off: built-in model classes only)"
    )
    allow_pickle: bool = config_field(False, "load .bin (pickle) weights (off: safetensors only)")

    REQUIRED: ClassVar[tuple[str, ...]] = ()  # fields a run cannot go without, from a flag or the file
    # What a resumed output may change: what a run may load and how long it waits on a server,
    # never how a question is run (subclasses add which questions and how many at once).
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        "request_timeout",
        "request_retries",
        "trust_remote_code",
        "allow_pickle",
        "batch_size",
    )

    @cached_property
    def spec(self) -> ModelSpec:
        """``model`` parsed, once for the run (``araft_lc.chat.model_spec.ModelSpec``).

        Raises:
            ModelLoadError: (a ValueError) ``model`` names nothing this could load.
        """
        return ModelSpec.parse(self.model)

    def model_options(self) -> dict[str, Any]:
        """The keyword arguments of ``araft_lc.chat.model_spec.load_chat_model`` these settings give."""
        return {
            "adapter": self.adapter,
            "load_in_4bit": self.load_in_4bit,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_new_tokens": self.max_new_tokens,
            "max_batch_size": self.batch_size,
            "backend": self.backend,
            "trust_remote_code": self.trust_remote_code,
            "allow_pickle": self.allow_pickle,
            "request_timeout": self.request_timeout,
            "max_retries": self.request_retries,
        }

    def __post_init__(self) -> None:
        self.check_values()  # settings that exist can run: no one downstream checks them again

    def check(self) -> None:
        """Raises ConfigError when a value cannot run, or a field the command needs is unset."""
        self.check_values()
        for key in self.REQUIRED:
            if not getattr(self, key):
                raise ConfigError(
                    f"{key} is not set: pass --{key.replace('_', '-')} or put {key}: in the --config file"
                )

    def check_values(self) -> None:
        """Raises ConfigError when a value cannot run (wherever it came from); run when the
        settings are made, and by ``check``."""
        try:
            check_bounds(
                **{
                    key: getattr(self, key)
                    for key in (
                        "max_steps",
                        "max_seconds",
                        "tool_timeout",
                        "observation_chars",
                        "max_question_chars",
                        "max_new_tokens",
                    )
                }
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.batch_size < 1:
            raise ConfigError(f"batch_size is {self.batch_size}: 1 decodes each call alone")
        if self.samples < 1:
            raise ConfigError(f"samples is {self.samples}: 1 runs once, K > 1 votes over K runs")
        if self.samples > 1 and not self.sample_temperature > 0:
            raise ConfigError(f"sample_temperature is {self.sample_temperature}: sampled runs need one above 0")
        if self.backend not in (None, "torch", "llama.cpp"):
            raise ConfigError(f"backend is {self.backend!r}: use torch or llama.cpp (or leave it unset)")
        if not self.wikipedia and not self.tools and not self.mcp_config:
            raise ConfigError(
                "--no-wikipedia leaves the agent no tools: give it --tool MODULE:ATTRIBUTE or --mcp-config FILE"
            )
        if self.vote not in VOTE_RULES:
            raise ConfigError(f"vote is {self.vote!r}: use one of {', '.join(VOTE_RULES)}")


S = TypeVar("S", bound=RunSettings)

_GIVEN = "_settings_given"  # the namespace attribute naming the settings the command line gave


class _Given(argparse.Action):
    """Stores a flag's value as argparse's own actions do, and notes that the command line gave it:
    a given flag overrides the config file even where it repeats the default."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        given = getattr(namespace, _GIVEN, None)
        if given is None:
            given = set()
            setattr(namespace, _GIVEN, given)
        given.add(self.dest)


def add_settings_flags(
    parser: argparse.ArgumentParser, cls: type[RunSettings], names: Optional[dict[str, tuple[str, ...]]] = None
) -> None:
    """Add ``--config`` and a flag per field of ``cls``: its help, its default; a bool is a switch,
    a list takes one or more values.

    Args:
        names: flag names for a field other than its own (generate: ``model`` as ``--teacher``).
    """
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="settings from a YAML file (keys as the flags', with _ for -: a run's saved "
        "settings are one); flags given beside it override it",
    )
    hints = get_type_hints(cls)
    for f in fields(cls):
        default = field_default(f)
        for flag, (const, help_text) in f.metadata.get("switches", {}).items():
            parser.add_argument(flag, dest=f.name, action=_Given, nargs=0, const=const, default=default, help=help_text)
        if "switches" in f.metadata:
            continue
        kind = _base(hints[f.name])
        options: dict[str, Any] = (
            {"nargs": 0, "const": True} if kind is bool else {"nargs": "+"} if kind is list else {"type": kind}
        )
        flags = (names or {}).get(f.name) or f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),)
        required = f.name in cls.REQUIRED  # argparse cannot require it: the config file may give it
        parser.add_argument(
            *flags,
            dest=f.name,
            action=_Given,
            default=None if required else default,
            help=f.metadata["help"] + (" (required, here or in --config)" if required else ""),
            **options,
        )


def _base(hint: Any) -> Any:
    """``Optional[int]`` -> ``int``; ``list[str]`` -> ``list``."""
    if get_origin(hint) is Union:
        hint = next(a for a in get_args(hint) if a is not type(None))
    return get_origin(hint) or hint


def settings_from_args(cls: type[S], args: argparse.Namespace) -> S:
    """The settings of a command: defaults, then ``args.config``'s file, then the flags given.

    The namespace is left as argparse made it: the command reads the resolved values from the
    settings alone, which checked their values when they were made (``check_values``), once.

    Raises:
        ConfigError: (a ValueError, one line) the file cannot be read or is not YAML; an unknown
            key (named with the valid ones); a value of the wrong type; a required one missing.
    """
    path = getattr(args, "config", None)
    data = read_config(path) if path else {}
    given = {key: getattr(args, key) for key in getattr(args, _GIVEN, ())}
    values = checked_values(
        cls, {**data, **given}, where=lambda key: f"{path}: " if key in data and key not in given else ""
    )
    try:
        settings = cls(**values)
        settings.check()
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None
    return settings


CONFIG_ENV = "ARAFT_CONFIG"  # the server's --config: a settings file, as araft ask --config reads
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def env_name(key: str) -> str:
    """The environment variable of a settings field: ``max_seconds`` -> ``ARAFT_MAX_SECONDS``."""
    return "ARAFT_" + key.upper()


def settings_from_env(cls: type[S], environ: Optional[dict[str, str]] = None) -> S:
    """The settings of a process that takes no flags (the LangGraph server): defaults, then the
    YAML file ``$ARAFT_CONFIG`` names, then ``$ARAFT_<FIELD>`` for each field set.

    Raises:
        ConfigError: (one line) the file cannot be read; a variable's value is not of its
            field's type (named with the variable); a value that cannot run.
    """
    env = os.environ if environ is None else environ
    path = env.get(CONFIG_ENV) or None
    data = read_config(path) if path else {}
    hints = get_type_hints(cls)
    given: dict[str, Any] = {}
    for f in fields(cls):
        raw = env.get(env_name(f.name))
        if raw is None:
            continue
        kind = _base(hints[f.name])
        if kind is bool:
            if raw.strip().lower() not in _TRUE + _FALSE:
                raise ConfigError(f"{env_name(f.name)}={raw!r}: write 1 or 0 (true or false)")
            given[f.name] = raw.strip().lower() in _TRUE
        elif kind is str:
            given[f.name] = raw.strip() or (None if type(None) in get_args(hints[f.name]) else raw)
        elif kind is list and not raw.lstrip().startswith("["):  # a,b,c as well as a YAML list
            given[f.name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            try:
                given[f.name] = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError:
                given[f.name] = raw
    values = checked_values(
        cls, {**data, **given}, where=lambda key: f"{env_name(key)}: " if key in given else f"{path}: "
    )
    settings = cls(**values)
    settings.check()
    return settings


def settings_yaml(settings: RunSettings, command: str) -> str:
    """The settings as the YAML file that ``araft COMMAND --config FILE`` reads."""
    return (
        f"# araft {command} --config THIS_FILE runs these settings again; flags given beside it override them\n"
        + yaml.safe_dump(asdict(settings), sort_keys=False, allow_unicode=True)
    )


def check_resumable(settings: RunSettings, path: str | Path) -> None:
    """Where ``path`` (saved settings) exists, the run resumes an output: check that it was started
    with the same settings, but for the class's ``RESUMABLE`` ones. Keys only one side has (a
    version of araft with other fields) are not compared. Cheap: call it before a model loads.

    Raises:
        ConfigError: the output was started with other settings; the message names them, the
            file to resume with, and the way out.
    """
    path = Path(path)
    if not path.is_file():
        return
    names = {f.name for f in fields(settings)}
    saved = checked_values(
        type(settings), {k: v for k, v in read_config(path).items() if k in names}, where=lambda key: f"{path}: "
    )
    now = asdict(settings)
    changed = [key for key in saved if key not in settings.RESUMABLE and saved[key] != now[key]]
    if changed:
        what = ", ".join(f"{key} {saved[key]!r} there, {now[key]!r} now" for key in changed)
        raise ConfigError(
            f"{path} holds the settings this output was started with, and they differ ({what}): "
            f"resume with --config {path}, or choose another --out"
        )


def save_settings(settings: RunSettings, path: str | Path, command: str) -> None:
    """Write ``settings`` at ``path``, beside a run's outputs, once ``check_resumable`` allows it
    (the ``RESUMABLE`` ones are saved as they are now).

    Raises:
        ConfigError: as ``check_resumable``.
        WriteError: the file cannot be written (a full or read-only disk).
    """
    from araft_lc.storage.atomic_file import write_text_atomically

    check_resumable(settings, path)
    write_text_atomically(path, settings_yaml(settings, command))
