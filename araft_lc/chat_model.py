"""``AraftChatModel``: a LangChain chat model around a transformers causal LM.

Optionally 4-bit NF4 (bitsandbytes, CUDA only) and with LoRA adapters (peft), switchable by name.
torch, transformers and peft are imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from araft_lc.batcher import Request
from araft_lc.chat_format import render_chat, to_turns

__all__ = ["AraftChatModel", "ModelLoadError", "cut_at_stop_strings", "nf4_config"]


def nf4_config() -> Any:
    """The 4-bit quantisation of the Araft models, for inference and QLoRA training alike: NF4,
    double quantisation, bf16 compute (bitsandbytes, CUDA only)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


class ModelLoadError(ValueError):
    """A model or adapter that cannot be loaded; the message says what to do."""


def cut_at_stop_strings(text: str, stop: Optional[Sequence[str]]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cut = len(text)
    for s in stop or ():
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut], cut < len(text)


def _refuse_pickle_only(what: str, path: str, weights: str, allow_pickle: bool) -> None:
    """Refuse a local folder whose ``weights`` are pickles only (``*.bin``, no ``*.safetensors``):
    loading one runs code from the file. ``allow_pickle`` lets it through."""
    folder = Path(path)
    if allow_pickle or not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    if any(folder.glob(weights)):
        raise ModelLoadError(
            f"cannot load {what} {path!r}: it has pickle weights only ({weights}); convert them to "
            "safetensors, or pass allow_pickle=True (--allow-pickle) if you trust them"
        )


class AraftChatModel(BaseChatModel):
    """A local Hugging Face model as a LangChain chat model.

    Args:
        model_id: a Hub id (from the local cache when offline) or a local folder.
        adapters: LoRA adapters to load, ``{name: path_or_hub_id}``.
        adapter: the active adapter's name; None runs the base model. Per call, ``adapter=``
            (e.g. ``model.bind(adapter="sft")``) overrides it.
        load_in_4bit: NF4 with double quantisation and bf16 compute (CUDA only).
        trust_remote_code: run a model folder's own Python code (off: only built-in classes).
        allow_pickle: load ``.bin`` (pickle) weights; off, weights must be safetensors.
        max_new_tokens: the cap on generated tokens per call.
        temperature: 0 decodes greedily; above 0 samples, seeded by ``seed``.
        prefix_cache: reuse the key/values of the longest token prefix already read (the shared
            system prompt, the run so far); see ``araft_lc.prefix_cache``.
        max_batch_size: greedy calls that arrive together (concurrent runs) are generated in one
            padded batch of up to this many (``araft_lc.batcher``); 1 turns batching off. A
            batch of one takes the prefix-cache path. Sampled calls run one by one, so a seed
            reproduces them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_id: str
    adapters: dict[str, str] = Field(default_factory=dict)
    adapter: Optional[str] = None
    load_in_4bit: bool = False
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: Optional[int] = None
    device: Optional[str] = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    prefix_cache: bool = True
    prefix_cache_entries: int = 4
    max_batch_size: int = 8
    batch_wait_ms: float = 5.0

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _cache: Any = PrivateAttr(default=None)
    _batcher: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # After validation, so a load failure surfaces as ModelLoadError, not a ValidationError.
        self._load()

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "AraftChatModel":
        """Build a preset (``araft-dpo``, ``araft-sft``, ``smollm2-135m``); ``overrides`` win."""
        from araft_lc.presets import preset_fields

        try:
            fields = preset_fields(name)
        except ValueError as e:
            raise ModelLoadError(str(e)) from None
        return cls(**{**fields, **overrides})

    # -- loading -------------------------------------------------------------------------------

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cuda = torch.cuda.is_available()
        device = self.device or ("cuda" if cuda else "cpu")
        # Code and pickles from a model folder run only when asked for: weights are safetensors.
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code,
                                  "use_safetensors": None if self.allow_pickle else True}
        if self.load_in_4bit:
            if not cuda:
                raise ModelLoadError(
                    f"4-bit loading of {self.model_id} needs a CUDA GPU (bitsandbytes NF4); "
                    "on a CPU load it unquantised (load_in_4bit=False, or --no-4bit)"
                )
            kwargs["quantization_config"] = nf4_config()
            kwargs["device_map"] = {"": 0}
        else:
            kwargs["dtype"] = torch.bfloat16 if device.startswith("cuda") else torch.float32
        _refuse_pickle_only("model", self.model_id, "pytorch_model*.bin", self.allow_pickle)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_id, trust_remote_code=self.trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(self.model_id, **kwargs)
        except (OSError, ValueError) as e:
            raise ModelLoadError(
                f"cannot load model {self.model_id!r} ({str(e).splitlines()[0]}): pass a local folder, "
                "a preset (smollm2-135m, araft-sft, araft-dpo), or download it first while online "
                f"(`hf download {self.model_id}`)"
            ) from None
        if not self.load_in_4bit:
            model.to(device)
        model.eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        for i, (name, path) in enumerate(self.adapters.items()):
            _refuse_pickle_only(f"adapter {name!r} from", path, "adapter_model.bin", self.allow_pickle)
            try:
                if i == 0:
                    from peft import PeftModel

                    model = PeftModel.from_pretrained(model, path, adapter_name=name)
                else:
                    model.load_adapter(path, adapter_name=name)
            except (OSError, ValueError) as e:
                raise ModelLoadError(
                    f"cannot load adapter {name!r} from {path!r} ({str(e).splitlines()[0]}): pass a "
                    "folder holding adapter_config.json, or download it first while online"
                ) from None
        if self.adapter is not None and self.adapter not in self.adapters:
            raise ModelLoadError(f"adapter {self.adapter!r} is not loaded: loaded are {list(self.adapters)}")
        self._model, self._tokenizer = model, tokenizer
        if self.prefix_cache:
            from araft_lc.prefix_cache import PrefixCache

            self._cache = PrefixCache(self.prefix_cache_entries)
        if self.max_batch_size > 1:
            from araft_lc.batcher import Batcher

            self._batcher = Batcher(self._run_batch, self.max_batch_size, self.batch_wait_ms / 1000)

    # -- LangChain interface ------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "araft-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "adapter": self.adapter,
            "adapters": self.adapters,
            "quantization": "nf4" if self.load_in_4bit else None,
            "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens,
        }

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def prompt_text(self, messages: Sequence[BaseMessage]) -> str:
        """The exact text the model sees: the tokenizer's chat template, else Llama-2 chat."""
        return render_chat(self._tokenizer, to_turns(messages), add_generation_prompt=True)

    def _generation_kwargs(self, stop: Optional[Sequence[str]]) -> dict[str, Any]:
        from transformers import GenerationConfig

        sample = self.temperature > 0
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=sample,
            temperature=self.temperature if sample else None,
            top_p=self.top_p if sample else None,
            pad_token_id=self._tokenizer.pad_token_id,
            eos_token_id=self._tokenizer.eos_token_id,
            stop_strings=list(stop) if stop else None,
            return_dict_in_generate=True,
        )
        return {"generation_config": config, "tokenizer": self._tokenizer}

    def _prompt_ids(self, messages: Sequence[BaseMessage]) -> list[int]:
        # The text carries its own special tokens (template or Llama-2 format): add none.
        return self._tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]

    def _one_input(self, ids: list[int]) -> dict[str, Any]:
        import torch

        input_ids = torch.tensor([ids], device=self._model.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def _adapter_context(self, adapter: Optional[str]) -> Any:
        import contextlib

        self._check_adapter(adapter)
        if not self.adapters:
            return contextlib.nullcontext()
        if adapter is None:
            return self._model.disable_adapter()
        self._model.set_adapter(adapter)
        return contextlib.nullcontext()

    def _check_adapter(self, adapter: Optional[str]) -> None:
        if adapter is not None and adapter not in self.adapters:
            if not self.adapters:
                raise ValueError(f"adapter {adapter!r} asked for, but the model has no adapters")
            raise ValueError(f"unknown adapter {adapter!r}: loaded are {list(self.adapters)}")

    def _run_batch(self, requests: list[Any]) -> list[list[int]]:
        """Generate for requests of one key (adapter, stop strings): the new token ids of each.

        One request reuses the prefix cache; several are left-padded into one ``generate``,
        each row stopping on its own; trailing padding is cut from each row (so a row that
        ended with EOS, when EOS is also the padding token, counts one token less).
        """
        import torch

        adapter, stop = requests[0].key
        device = self._model.device
        with self._lock, torch.inference_mode(), self._adapter_context(adapter):
            self._seed()
            if len(requests) == 1:
                inputs = self._one_input(requests[0].ids)
                out = self._model.generate(**inputs, **self._generation_kwargs(stop), **self._cached(adapter, inputs))
                self._keep(adapter, out)
                return [out.sequences[0, len(requests[0].ids):].tolist()]
            pad = self._tokenizer.pad_token_id
            width = max(len(r.ids) for r in requests)
            input_ids = torch.tensor([[pad] * (width - len(r.ids)) + r.ids for r in requests], device=device)
            mask = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in requests], device=device)
            out = self._model.generate(input_ids=input_ids, attention_mask=mask, **self._generation_kwargs(stop))
        rows = []
        for row in out.sequences[:, width:].tolist():
            while row and row[-1] == pad:
                row.pop()
            rows.append(row)
        return rows

    def _cached(self, adapter: Optional[str], inputs: Any) -> dict[str, Any]:
        """generate() arguments that reuse a cached prefix, and return the cache to keep."""
        if self._cache is None:
            return {}
        past = self._cache.lookup(adapter, inputs["input_ids"][0].tolist())
        return {"cache": past} if past is not None else {}

    def _keep(self, adapter: Optional[str], out: Any) -> None:
        if self._cache is not None:
            self._cache.store(adapter, out.sequences[0].tolist(), out.cache)

    def _seed(self) -> None:
        if self.temperature > 0 and self.seed is not None:
            import torch

            torch.manual_seed(self.seed)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:

        adapter = kwargs.get("adapter", self.adapter)
        self._check_adapter(adapter)
        ids = self._prompt_ids(messages)
        prompt_len = len(ids)
        key = (adapter, tuple(stop or ()))
        if self._batcher is not None and self.temperature == 0:
            new_tokens = self._batcher.submit(ids, key)
        else:
            new_tokens = self._run_batch([Request(ids, key)])[0]
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        text, stopped = cut_at_stop_strings(text, stop)
        message = AIMessage(
            text,
            usage_metadata={
                "input_tokens": prompt_len,
                "output_tokens": len(new_tokens),
                "total_tokens": prompt_len + len(new_tokens),
            },
            response_metadata={"model_name": self.model_id, "adapter": adapter, "stopped": stopped},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import torch
        from transformers import TextIteratorStreamer

        adapter = kwargs.get("adapter", self.adapter)
        inputs = self._one_input(self._prompt_ids(messages))
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode(), self._adapter_context(adapter):
                    self._seed()
                    out = self._model.generate(**inputs, **self._generation_kwargs(stop), streamer=streamer,
                                               **self._cached(adapter, inputs))
                    self._keep(adapter, out)
            except BaseException as e:  # re-raised in the caller's thread
                errors.append(e)
                streamer.end()

        # Hold back the tail that could be the start of a stop string until it is decided.
        hold = max((len(s) for s in stop or ()), default=1) - 1
        pending, stopped, emitted = "", False, False
        with self._lock:
            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            for piece in streamer:
                if stopped:
                    continue
                pending += piece
                text, stopped = cut_at_stop_strings(pending, stop)
                emit = text if stopped else text[: max(0, len(text) - hold)]
                pending = "" if stopped else text[len(emit):]
                if emit:
                    emitted = True
                    chunk = ChatGenerationChunk(message=AIMessageChunk(emit))
                    if run_manager:
                        run_manager.on_llm_new_token(emit, chunk=chunk)
                    yield chunk
            thread.join()
        if errors:
            raise errors[0]
        if (pending and not stopped) or not emitted:
            # The held-back tail; or an empty chunk for an empty output, which is still an output.
            chunk = ChatGenerationChunk(message=AIMessageChunk(pending))
            if run_manager:
                run_manager.on_llm_new_token(pending, chunk=chunk)
            yield chunk
