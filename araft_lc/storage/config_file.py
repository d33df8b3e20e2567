"""Config files: a dataclass's fields from one YAML mapping, every key and value checked.

One reader for the two kinds of config the project has: the run settings of ``araft ask``,
``generate`` and ``eval`` (``araft_lc.agent.settings``) and the training configs (``finetune.config``).
Every error is a ``ConfigError`` of one line naming the file, the key and what to write instead.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import MISSING, Field, field, fields
from pathlib import Path
from typing import Any, Callable, Optional, Union, get_args, get_origin, get_type_hints

import yaml

from araft_lc.storage.error_text import error_text

__all__ = ["ConfigError", "config_field", "read_config", "checked_values", "field_default"]


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key and the fix."""


def config_field(
    default: Any = None, help: str = "", *, factory: Optional[Callable[[], Any]] = None, **metadata: Any
) -> Any:
    """A dataclass field that carries its help (``metadata["help"]``, as TRL's configs do); a
    list or dict default is copied for each instance; ``factory`` computes the default when an
    instance is made (from the environment, say)."""
    if factory is None and isinstance(default, (list, dict)):
        factory = lambda: type(default)(default)  # noqa: E731
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help, **metadata})
    return field(default=default, metadata={"help": help, **metadata})


def read_config(path: str | Path) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (an empty file: ``{}``).

    Raises:
        ConfigError: the file cannot be read, is not UTF-8, not YAML, or not a mapping.
    """
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not YAML ({error_text(e, with_type=False)})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config is a mapping of key: value")
    return {str(key): value for key, value in (loaded or {}).items()}


def checked_values(cls: type, data: dict[str, Any], where: Callable[[str], str] = lambda key: "") -> dict[str, Any]:
    """``data`` as keyword arguments of the dataclass ``cls``: every key a field, every value of
    the field's type (an int where a float is due becomes a float).

    Args:
        where: the prefix of an error about ``key`` (the file its value came from, or "").

    Raises:
        ConfigError: an unknown key (named with the nearest and the valid keys), a wrong value.
    """
    names = [f.name for f in fields(cls)]
    hints = get_type_hints(cls)
    values = {}
    for key, value in data.items():
        try:
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                raise ConfigError(
                    f"unknown config key {key!r} for {cls.__name__}"
                    f"{f'; did you mean {near[0]}?' if near else ''} (valid keys: {', '.join(names)})"
                )
            values[key] = _check(hints[key], key, value)
        except ConfigError as e:
            raise ConfigError(f"{where(key)}{e}") from None
    return values


def field_default(f: Field) -> Any:
    """The value a dataclass field takes when none is given."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is MISSING:
        raise TypeError(f"dataclass field {f.name!r} has neither a default nor a default factory")
    return f.default_factory()


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _check(hint: Any, key: str, value: Any) -> Any:
    """``value`` for a field typed ``hint``, or ConfigError naming the key and the type."""
    origin, args = get_origin(hint), get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{key} may not be null")
    accepted = [a for a in args if a is not type(None)] if origin is Union else [hint]
    for kind in accepted:
        base = get_origin(kind) or kind
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 5e-3 (no dot) as a string
        if base is list and isinstance(value, list):
            item = (get_args(kind) or (Any,))[0]
            if item is float and all(isinstance(v, (int, float)) for v in value):
                return [float(v) for v in value]
            if item is Any or all(isinstance(v, item) for v in value):
                return value
        elif isinstance(value, base) and not (base is int and isinstance(value, bool)):
            return value
    kind = hint.__name__ if isinstance(hint, type) else str(hint)
    raise ConfigError(f"{key}: {value!r} is not a {kind}")
