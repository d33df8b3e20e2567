"""Chat models from a spec string (``load_chat_model``), and the flags every command that loads
one shares. What a spec may say is parsed once, in ``araft_lc.model_spec``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["load_chat_model", "add_model_flags", "model_flags"]


def add_model_flags(parser: Any) -> None:
    """The flags every command that loads a model shares: the tokens per step, what a model
    folder may run, the wall-time cap per question, and the bounds on requests to a model server."""
    from araft_lc.presets import MAX_NEW_TOKENS

    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS,
                        help="tokens the model may write per step (default: %(default)s)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run Python code shipped in a model folder (off: built-in model classes only)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load .bin (pickle) weights (off: safetensors only)")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="wall time per question; later steps are not started (default: %(default)s)")
    parser.add_argument("--request-timeout", type=float, default=120.0,
                        help="seconds per request to an openai: server (default: %(default)s)")
    parser.add_argument("--request-retries", type=int, default=2,
                        help="retries of a failed request to an openai: server (default: %(default)s)")


def model_flags(args: Any) -> dict[str, Any]:
    """``add_model_flags``' values as ``load_chat_model`` options."""
    return {"max_new_tokens": args.max_new_tokens, "trust_remote_code": args.trust_remote_code,
            "allow_pickle": args.allow_pickle, "request_timeout": args.request_timeout,
            "max_retries": args.request_retries}


def load_chat_model(
    spec: str,
    *,
    adapter: Optional[str] = None,
    load_in_4bit: Optional[bool] = None,
    **options: Any,
) -> BaseChatModel:
    """Build the chat model named by ``spec``: ``ModelSpec.parse(spec).load(...)`` (see
    ``araft_lc.model_spec`` for the forms a spec takes and the options).

    Raises:
        ValueError: the spec names nothing loadable (``ModelLoadError`` for local models).
    """
    from araft_lc.model_spec import ModelSpec

    return ModelSpec.parse(spec).load(adapter=adapter, load_in_4bit=load_in_4bit, **options)
