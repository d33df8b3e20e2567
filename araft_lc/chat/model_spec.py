"""``ModelSpec``: one string names any chat model the agent can run on, parsed here once.

- a preset: ``araft-smollm2``, ``smollm2-135m``, ``araft-sft``, ``araft-dpo`` (``araft_lc.chat.presets``)
- ``hf:PATH_OR_ID[+ADAPTER]``, a bare local folder or a Hub id ``ORG/NAME``: ``AraftChatModel``
- ``openai:MODEL@BASE_URL``: ``ChatOpenAI`` on an OpenAI-compatible server (vLLM); the API key
  comes from ``OPENAI_API_KEY`` (any value for a local vLLM server).
- ``oracle``, ``visible``: teachers that answer HotpotQA questions from their supporting facts;
  the spec names them, and the commands that run question sets (``evals.teachers``) build them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from araft_lc.chat.presets import PRESETS, preset_fields
from araft_lc.react.bounds import MAX_NEW_TOKENS
from araft_lc.runtime.torch.causal_lm import ModelLoadError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["ModelSpec", "TEACHERS", "load_chat_model"]

TEACHERS = ("oracle", "visible")
_FORMS = f"a preset ({', '.join(PRESETS)}), hf:PATH_OR_ID[+ADAPTER], a local model folder, or openai:MODEL@BASE_URL"

Kind = Literal["preset", "hf", "openai", "teacher"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. Build one with ``ModelSpec.parse``.

    Attributes:
        text: the spec as written (stripped).
        kind: ``preset``, ``hf`` (a folder or Hub id), ``openai`` or ``teacher``.
        name: the preset's or teacher's name, the folder or Hub id, or the served model's name.
        adapter: the LoRA adapter after ``+`` (``hf`` specs), else "".
        base_url: the server's URL (``openai`` specs), else "".
    """

    text: str
    kind: Kind
    name: str
    adapter: str = ""
    base_url: str = ""

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Read ``text`` (see the module docstring); nothing is loaded or imported.

        Raises:
            ModelLoadError: (a ValueError) one line naming the problem and the forms to write.
        """
        text = text.strip()
        if text in TEACHERS:
            return cls(text, "teacher", text)
        if text in PRESETS:
            return cls(text, "preset", text)
        if text.startswith("openai:"):
            model, sep, base_url = text[len("openai:") :].partition("@")
            if not model or not sep or not base_url:
                raise ModelLoadError(f"bad model spec {text!r}: write openai:MODEL@BASE_URL")
            return cls(text, "openai", model, base_url=base_url)
        path, _, adapter = (text[len("hf:") :] if text.startswith("hf:") else text).partition("+")
        if not text.startswith("hf:") and not _looks_local(path) and "/" not in path:
            raise ModelLoadError(f"unknown model spec {text!r}: use {_FORMS}")
        return cls(text, "hf", path, adapter=adapter)

    def __str__(self) -> str:
        return self.text

    @property
    def local_id(self) -> str:
        """The Hugging Face folder or Hub id of the weights (a preset's converted on first use);
        an adapter after ``+`` is left out.

        Raises:
            ModelLoadError: the spec names a server or a teacher, not local weights.
        """
        if self.kind == "preset":
            model_id = str(preset_fields(self.name)["model_id"])
            if model_id.endswith(".gguf"):  # SmolLM2's: its GGUF, as a transformers folder
                from araft_lc.runtime.torch.gguf_convert import hf_folder_of_gguf

                return str(hf_folder_of_gguf(model_id))
            return model_id
        if self.kind == "hf":
            return self.name
        raise ModelLoadError(
            f"{self.text!r} is {'a server' if self.kind == 'openai' else 'a teacher'}, "
            "not local weights: name a preset, hf:PATH or a folder"
        )

    def check(self, adapter: Optional[str] = None) -> None:
        """Check what can be checked before anything loads (milliseconds, no imports of the ML
        stack): a model folder's config.json, an adapter folder's adapter_config.json.

        Raises:
            ModelLoadError: naming what is wrong and what to pass instead; a teacher spec too
                (only the commands that run question sets can build one).
        """
        if self.kind == "teacher":
            raise ModelLoadError(
                f"the {self.name} teacher answers from given HotpotQA questions: use it with "
                "araft generate or araft eval"
            )
        if self.kind == "openai":
            return
        if self.kind == "hf" and _looks_local(self.name):
            folder = Path(self.name).expanduser()
            if not folder.is_dir():
                raise ModelLoadError(
                    f"model folder {self.name} does not exist: pass a folder holding config.json "
                    f"and weights, a preset ({', '.join(PRESETS)}), or hf:ORG/NAME"
                )
            if not (folder / "config.json").is_file():
                raise ModelLoadError(
                    f"{self.name} is not a model folder (it has no config.json): pass a folder "
                    "holding config.json and weights, e.g. one written by save_pretrained"
                )
        for path in filter(None, [adapter, self.adapter]):
            if _looks_local(path):
                folder = Path(path).expanduser()
                if not folder.is_dir():
                    raise ModelLoadError(f"adapter folder {path} does not exist: pass a folder written by araft train")
                if not (folder / "adapter_config.json").is_file():
                    raise ModelLoadError(
                        f"{path} is not a LoRA adapter folder (it has no adapter_config.json): "
                        "pass the output_dir of araft train"
                    )

    def check_server(self, timeout: float = 5.0) -> None:
        """For an ``openai:`` spec, fail fast, before any work, when the server does not answer."""
        import urllib.error
        import urllib.request

        if self.kind != "openai":
            return
        try:
            with urllib.request.urlopen(self.base_url.rstrip("/") + "/models", timeout=timeout):
                pass
        except urllib.error.HTTPError:
            return  # it answered (auth or routing aside): the server is there
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ValueError(f"model server {self.base_url} is unreachable ({e}): start it or fix the URL") from None

    def load(
        self, *, adapter: Optional[str] = None, load_in_4bit: Optional[bool] = None, **options: Any
    ) -> BaseChatModel:
        """Build the chat model (after ``check``).

        Args:
            adapter: a LoRA adapter folder to load on top (active), for local models.
            load_in_4bit: override the preset's quantisation (local models).
            options: passed to the model class (``max_new_tokens``, ``temperature``, ``seed``; for
                local models also ``trust_remote_code`` and ``allow_pickle``, both off by default;
                for ``openai:`` specs ``request_timeout`` (120 s) and ``max_retries`` (2)).

        Raises:
            ValueError: the spec names nothing loadable here (``ModelLoadError`` for local models).
        """
        self.check(adapter)
        if self.kind == "openai":
            return self._chat_openai(adapter, options)
        fields: dict[str, Any] = {
            k: v
            for k, v in options.items()
            if k not in ("request_timeout", "max_retries") and not (k == "backend" and v is None)
        }
        if load_in_4bit is not None:
            fields["load_in_4bit"] = load_in_4bit
        adapter = adapter or self.adapter or None
        # Traces name the model as the user did (the preset, the Hub id, the folder), not the
        # cache folder it loads from; an adapter of their own adds its folder's name.
        name = self.name if self.kind == "preset" or not _looks_local(self.name) else Path(self.name).name
        if adapter:
            name += "+" + Path(adapter.rstrip("/\\")).name
        if self.kind == "preset":
            base = preset_fields(self.name)
            if adapter:  # another adapter: its own prompt style (its folder's record), not the preset's
                base.update(adapters={"adapter": adapter}, adapter="adapter", prompt=None)
        else:
            base = {
                "model_id": self.name,
                "adapters": {"adapter": adapter} if adapter else {},
                "adapter": "adapter" if adapter else None,
            }
        base["model_name"] = name
        from araft_lc.chat.chat_model import AraftChatModel

        return AraftChatModel(**{**base, **fields})

    def _chat_openai(self, adapter: Optional[str], options: dict[str, Any]) -> BaseChatModel:
        if adapter:
            raise ValueError("--adapter applies to local models; on a vLLM server name the LoRA module as MODEL")
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            raise ValueError("openai: specs need langchain-openai: pip install 'araft[openai]'") from None
        from pydantic import SecretStr

        # Every request is bounded: a hung server costs at most request_timeout per try.
        return ChatOpenAI(
            model=self.name,
            base_url=self.base_url,
            api_key=SecretStr(os.environ.get("OPENAI_API_KEY", "EMPTY")),
            temperature=options.get("temperature", 0.0),
            max_completion_tokens=options.get("max_new_tokens", MAX_NEW_TOKENS),
            seed=options.get("seed"),
            timeout=options.get("request_timeout", 120.0),
            max_retries=options.get("max_retries", 2),
        )


def _looks_local(path: str) -> bool:
    """A path, not a Hub id (``org/name``): it exists, or starts like a path, or has more parts."""
    return Path(path).expanduser().exists() or path.startswith(("/", ".", "~")) or path.count("/") > 1


def load_chat_model(
    spec: str,
    *,
    adapter: Optional[str] = None,
    load_in_4bit: Optional[bool] = None,
    **options: Any,
) -> BaseChatModel:
    """Build the chat model named by ``spec``: ``ModelSpec.parse(spec).load(...)`` (see
    ``araft_lc.chat.model_spec`` for the forms a spec takes and the options).

    Raises:
        ValueError: the spec names nothing loadable (``ModelLoadError`` for local models).
    """
    return ModelSpec.parse(spec).load(adapter=adapter, load_in_4bit=load_in_4bit, **options)
