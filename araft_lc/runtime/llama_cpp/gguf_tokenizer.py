"""``GGUFTokenizer``: a model's tokenizer and chat template read from its GGUF, with no torch and no
transformers, for the llama.cpp backend.

llama.cpp tokenizes with the vocabulary the GGUF carries (its own, so the ids are the ones the
weights were trained on); the chat template the GGUF carries is rendered with jinja2 as
transformers renders it (a sandbox that trims blocks, ``raise_exception``, ``tojson``,
``strftime_now``), so a prompt is the same text, and the same ids, on either backend
(tests/integration/test_gguf_tokenizer.py holds both to the transformers tokenizer converted from the GGUF).
It offers what the engines and the chat rendering use of a transformers tokenizer: call it for
ids, ``decode``, ``apply_chat_template``, the special tokens and ``len``.
"""

from __future__ import annotations

import ctypes
import json
import weakref
from datetime import datetime
from functools import lru_cache
from typing import Any, Mapping, Optional, Sequence

__all__ = ["GGUFTokenizer", "render_template"]


def _free(llama: Any, model: Any) -> None:
    llama.llama_model_free(model)


class GGUFTokenizer:
    """The tokenizer a GGUF carries, read by llama.cpp (``vocab_only``: no weights are loaded).

    Args:
        gguf_file: the model's GGUF.

    Raises:
        ModelLoadError: llama-cpp-python is missing, or the file is not a GGUF llama.cpp reads.
    """

    def __init__(self, gguf_file: str) -> None:
        from araft_lc.runtime.llama_cpp.lib import INSTALL_HINT, llama_cpp_installed, start_llama_cpp
        from araft_lc.runtime.torch.causal_lm import ModelLoadError

        if not llama_cpp_installed():
            raise ModelLoadError(f"reading a GGUF's tokenizer needs llama-cpp-python: {INSTALL_HINT}")
        llama_cpp = start_llama_cpp()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(str(gguf_file).encode(), params)
        if not model:
            raise ModelLoadError(f"llama.cpp could not read the vocabulary of {gguf_file}: is it a GGUF?")
        self._llama, self._model = llama_cpp, model
        self._finalizer = weakref.finalize(self, _free, llama_cpp, model)
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.name_or_path = str(gguf_file)
        self.eos_token_id = int(llama_cpp.llama_vocab_eos(self._vocab))
        bos = int(llama_cpp.llama_vocab_bos(self._vocab))
        self.bos_token_id = bos if bos >= 0 else None
        self.eos_token = self.convert_ids_to_tokens(self.eos_token_id)
        self.bos_token = None if self.bos_token_id is None else self.convert_ids_to_tokens(self.bos_token_id)
        self.pad_token, self.pad_token_id = self.eos_token, self.eos_token_id  # as pad_with_eos does
        template = llama_cpp.llama_model_chat_template(model, None)
        self.chat_template: Optional[str] = template.decode("utf-8") if template else None

    def __len__(self) -> int:
        return int(self._llama.llama_vocab_n_tokens(self._vocab))

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        """``{"input_ids": ids}`` of ``text``, its special tokens read as such (as transformers does)."""
        return {"input_ids": self.encode(text, add_special_tokens=add_special_tokens)}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """``text``'s token ids; ``add_special_tokens``: with the BOS the model is set to add."""
        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            tokens = (self._llama.llama_token * size)()
            n = self._llama.llama_tokenize(self._vocab, data, len(data), tokens, size, add_special_tokens, True)
            if n >= 0:
                return list(tokens[:n])
            size = -n

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of ``ids``; ``skip_special_tokens`` leaves control tokens (EOS, turn markers) out."""
        n = len(ids)
        if n == 0:
            return ""
        tokens = (self._llama.llama_token * n)(*ids)
        size = 8 * n + 16
        while True:
            buffer = ctypes.create_string_buffer(size)
            written = self._llama.llama_detokenize(self._vocab, tokens, n, buffer, size, False, not skip_special_tokens)
            if written >= 0:
                return buffer.raw[:written].decode("utf-8", errors="replace")
            size = -written

    def convert_ids_to_tokens(self, token: int) -> str:
        """The vocabulary entry of ``token`` (its text as stored, special tokens as written)."""
        return self._llama.llama_vocab_get_text(self._vocab, token).decode("utf-8", errors="replace")

    def apply_chat_template(
        self, conversation: Sequence[Mapping[str, str]], tokenize: bool = False, add_generation_prompt: bool = False
    ) -> Any:
        """``conversation`` rendered with the GGUF's chat template, as transformers renders it.

        Raises:
            ValueError: the GGUF carries no chat template.
        """
        if not self.chat_template:
            raise ValueError(f"{self.name_or_path} carries no chat template")
        text = render_template(
            self.chat_template,
            conversation,
            add_generation_prompt,
            bos_token=self.bos_token or "",
            eos_token=self.eos_token,
            pad_token=self.pad_token,
        )
        return self.encode(text) if tokenize else text

    def close(self) -> None:
        """Free the vocabulary now (it is freed when the tokenizer is collected otherwise)."""
        self._finalizer()


@lru_cache(maxsize=8)
def _compiled(template: str) -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        from jinja2.exceptions import TemplateError

        raise TemplateError(message)

    def tojson(
        value: Any,
        ensure_ascii: bool = False,
        indent: Optional[int] = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render_template(
    template: str, conversation: Sequence[Mapping[str, str]], add_generation_prompt: bool, **special_tokens: str
) -> str:
    """A jinja chat ``template`` rendered over ``conversation`` in transformers' environment."""
    return _compiled(template).render(
        messages=[dict(t) for t in conversation],
        tools=None,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        **special_tokens,
    )
