"""``AraftChatModel``: a LangChain chat model around a transformers causal LM.

Optionally 4-bit NF4 (bitsandbytes, CUDA only) and with LoRA adapters (peft), switchable by name.
Loading lives in ``araft_lc.runtime.causal_lm``; this module is the chat surface only. torch, transformers
and peft are imported when a model is loaded, not when this module is.

Longer than our ~300 lines on purpose: it is one class, and LangChain's chat-model contract
(invoke, stream, batch, tool calling, structured output, tracing params) is one surface that the
standard suites check as a whole; its helpers already live beside it (``batcher``,
``continuous_batch``, ``static_decode``, ``lora_merge``, ``prefix_cache``, ``tool_calling``,
``structured_output``, ``chat_format``). At ~630 lines it is due a split: the choice between the
decode paths (one call, padded batch, continuous batch, static cache) belongs in a module of its
own, which the chat surface calls.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Literal, Optional, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, UsageMetadata
from langchain_core.runnables import Runnable
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from araft_lc.runtime.batcher import Request
from araft_lc.runtime.causal_lm import ModelLoadError, load_causal_lm, load_tokenizer, pad_with_eos
from araft_lc.react.chat_format import render_chat, to_turns
from araft_lc.chat.presets import DEFAULT_PROMPT, MAX_NEW_TOKENS, trained_prompt
from araft_lc.react.prompt import load_prompt, warn_prompt_mismatch

# What one call may set besides ``stop`` (``tools``/``tool_choice``/``prompt`` come from
# ``bind_tools``, ``structured_output`` from ``with_structured_output``).
_CALL_KEYWORDS = {"adapter", "max_tokens", "max_new_tokens", "temperature", "top_p", "seed", "deadline", "tools",
                  "tool_choice", "prompt", "structured_output"}


@dataclass(frozen=True)
class Decoding:
    """One call's decoding settings; calls batch together only when these are equal."""

    adapter: Optional[str]
    stop: tuple[str, ...]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: Optional[int]


def _deadline_criteria(deadlines: Sequence[Optional[float]]) -> dict[str, Any]:
    """``generate()`` arguments that stop each row at its deadline (``time.time()``), if any."""
    if all(d is None for d in deadlines):
        return {}
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Deadline(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            now = time.time()
            return torch.tensor([d is not None and now >= d for d in deadlines], device=input_ids.device)

    return {"stopping_criteria": StoppingCriteriaList([Deadline()])}


def _use_adapter(model: Any, has_adapters: bool, adapter: Optional[str], merged: bool = False) -> Any:
    """The context in which ``model`` runs ``adapter`` (None: the base model); with ``merged``,
    the one adapter is merged into the weights once (``araft_lc.runtime.lora_merge``)."""
    import contextlib

    if not has_adapters:
        return contextlib.nullcontext()
    if merged:
        from araft_lc.runtime.lora_merge import merge_once

        merge_once(model, adapter)  # and no set_adapter: peft would unmerge for it
        return contextlib.nullcontext()
    if adapter is None:
        return model.disable_adapter()
    model.set_adapter(adapter)
    return contextlib.nullcontext()


def _usage(input_tokens: int, output_tokens: int) -> UsageMetadata:
    return UsageMetadata(input_tokens=input_tokens, output_tokens=output_tokens,
                         total_tokens=input_tokens + output_tokens)

__all__ = ["AraftChatModel", "ContextLimitError", "Decoding", "ModelLoadError", "cut_at_stop_strings"]


class ContextLimitError(ValueError):
    """A prompt that, with the tokens the call may write, does not fit the model's context; raised
    before any prefill (a prefill's memory grows with the square of its length)."""


def cut_at_stop_strings(text: str, stop: Optional[Sequence[str]]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cut = len(text)
    for s in stop or ():
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut], cut < len(text)


class AraftChatModel(BaseChatModel):
    """A local Hugging Face model as a LangChain chat model: loaded from ``model_id`` (with
    ``araft_lc.runtime.causal_lm.load_causal_lm``), or wrapping a model already loaded, as LangChain's
    ``ChatHuggingFace`` wraps an ``llm`` (``AraftChatModel(model=m, tokenizer=t)``: a trainer's
    model mid-run, say; it is used as it is, on its device, with its active adapter).

    Args:
        model_id: a Hub id (from the local cache when offline) or a local folder; with ``model=``,
            only the name replies carry (default: the model's ``name_or_path``).
        model: a loaded transformers causal LM (or peft ``PeftModel``) to generate with instead.
        tokenizer: ``model``'s tokenizer (given one without a pad token, it pads with EOS).
        adapters: LoRA adapters to load, ``{name: path_or_hub_id}``.
        adapter: the active adapter's name; None runs the base model. Per call, ``adapter=``
            (e.g. ``model.bind(adapter="sft")``) overrides it.
        load_in_4bit: NF4 with double quantisation and bf16 compute (CUDA only).
        trust_remote_code: run a model folder's own Python code (off: only built-in classes).
        allow_pickle: load ``.bin`` (pickle) weights; off, weights must be safetensors.
        max_new_tokens: the cap on generated tokens per call (alias ``max_tokens``).
        temperature: 0 decodes greedily; above 0 samples, seeded by ``seed``.
        stop: stop strings for every call (a call's own ``stop`` is added to them).
        prompt: the Araft prompt style this model runs with: the agent's (``create_araft_agent``
            without ``prompt=``) and the one tools bound with ``bind_tools`` are rendered into
            (``fewshot``, ``zeroshot``, ``zeroshot_turns`` or a YAML path). None (the default):
            the style the active adapter was trained with, as its folder records it
            (``trained_prompt``), else ``fewshot``. A style other than the adapter's is a warning.
        model_name: the name traces show (``ls_model_name``): the preset or spec the user
            named. None: the Hub id, or a local folder's name (not the cache path it loads from).
        max_parse_retries: with bound tools, how often output that does not parse (or does not
            fit the tool) is shown to the model as an observation and tried again.
        prefix_cache: reuse the key/values of the longest token prefix already read (the shared
            system prompt, the run so far); see ``araft_lc.runtime.prefix_cache``. None (the default)
            turns it on where it was measured to pay: on a CPU (1.3x faster agent runs), not on
            CUDA (on an H200 a 7B agent run took 10.9 s with it, 9.5 s without: prefill is cheap
            there and the cache's copies are not; benchmarks/RESULTS.md).
        max_batch_size: greedy calls that arrive together (concurrent runs) are generated in one
            padded batch of up to this many (``araft_lc.runtime.batcher``); 1 turns batching off. A
            batch of one takes the prefix-cache path. Sampled calls run one by one, so a seed
            reproduces them.
        batching: ``"padded"`` gathers waiting calls into one ``generate``; ``"continuous"``
            decodes in one running batch that calls join and leave between tokens, each
            prefilled from its cached prefix (``araft_lc.runtime.continuous_batch``). None (the default):
            continuous on a CPU, where it measured 1.34x the padded batcher's questions/min at
            concurrency 8 (benchmarks/RESULTS.md); padded on CUDA, where only padded is measured,
            and with ``decode="static"``, whose calls run one at a time.
        decode: ``dynamic`` (the default): ``generate``'s growing cache; ``static``: batch-1 calls
            decode in a static cache of a few fixed lengths (``araft_lc.runtime.static_decode``), which a
            GPU runs compiled; the prefix cache then lives in it, cropped in place. Batches of
            several rows stay dynamic. ``warm_up()`` compiles it ahead.
        static_cache_lengths: the static caches' lengths (default powers of two from 512 to
            the model's context); a call longer than the largest decodes dynamically.
        compile_decode: with ``decode="static"``: None compiles where transformers does (CUDA,
            not 4-bit); True everywhere, NF4 and CPU included; False never.
        merge_lora: merge the one loaded adapter into the weights for inference (it must be
            ``adapter``; a call that asks for another, or for none, is refused). Not with 4-bit:
            re-quantising the merged weights would change the outputs.

    Per call, ``invoke(..., max_tokens=, temperature=, top_p=, seed=, stop=, adapter=)`` override
    the fields, and ``deadline=`` (a ``time.time()`` value) stops generation at that moment (the
    agent's ``max_seconds``); any other keyword is refused, as are unknown constructor arguments.
    """

    accepts_deadline: ClassVar[bool] = True

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", populate_by_name=True)

    model_id: str
    adapters: dict[str, str] = Field(default_factory=dict)
    adapter: Optional[str] = None
    load_in_4bit: bool = False
    max_new_tokens: int = Field(default=MAX_NEW_TOKENS, alias="max_tokens", ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = 1.0
    seed: Optional[int] = None
    stop: Optional[list[str]] = None
    streaming: bool = False  # invoke() streams internally (LangChain's convention)
    prompt: Optional[str] = None
    model_name: Optional[str] = None
    max_parse_retries: int = Field(default=2, ge=0)
    device: Optional[str] = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    prefix_cache: Optional[bool] = None
    prefix_cache_entries: int = 4
    max_batch_size: int = 8
    batch_wait_ms: float = 5.0
    batching: Optional[Literal["padded", "continuous"]] = None
    decode: Literal["dynamic", "static"] = "dynamic"
    static_cache_lengths: Optional[list[int]] = None
    compile_decode: Optional[bool] = None
    merge_lora: bool = False

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _cache: Any = PrivateAttr(default=None)
    _batcher: Any = PrivateAttr(default=None)
    _static: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _merge_needs_one_adapter(self) -> "AraftChatModel":
        if self.merge_lora and (len(self.adapters) != 1 or self.adapter not in self.adapters or self.load_in_4bit):
            raise ValueError("merge_lora needs exactly one adapter, made the active one (adapter=), on an "
                             "unquantised model: merging into 4-bit weights re-quantises them and changes outputs")
        return self

    @model_validator(mode="after")
    def _prompt_of_the_adapter(self) -> "AraftChatModel":
        """Fill ``prompt`` with the adapter's own style; warn when one given differs from it."""
        trained = self.trained_prompt
        if self.prompt is None:
            self.prompt = trained or DEFAULT_PROMPT
        else:
            warn_prompt_mismatch(self.prompt, trained, f"adapter {self.adapter!r}")
        load_prompt(self.prompt)  # an unknown style fails here, in one line, not at the first call
        return self

    @property
    def trained_prompt(self) -> Optional[str]:
        """The prompt style the active adapter was trained with, where its folder records it."""
        return trained_prompt(self.adapters.get(self.adapter)) if self.adapter else None

    def __init__(self, *, model: Any = None, tokenizer: Any = None, **data: Any) -> None:
        if model is not None:
            if isinstance(model, str) or tokenizer is None:
                raise TypeError("model= takes a loaded transformers model and tokenizer= its tokenizer; "
                                "name a folder or Hub id to load with model_id=")
            if data.get("adapters"):
                raise ValueError("adapters= load with model_id=; a loaded model brings its own (a PeftModel "
                                 "runs its active adapter)")
            data.setdefault("model_id", str(getattr(model, "name_or_path", "") or type(model).__name__))
        super().__init__(**data)
        # After validation, so a load failure surfaces as ModelLoadError, not a ValidationError.
        if model is None:
            self._load()
            return
        self._use(model, pad_with_eos(tokenizer))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "AraftChatModel":
        """Build a preset (``araft-smollm2``, ``araft-dpo``, ``araft-sft``, ``smollm2-135m``) with
        the prompt style its adapter was trained with; ``overrides`` win."""
        from araft_lc.chat.presets import preset_fields

        try:
            fields = preset_fields(name)
        except ValueError as e:
            raise ModelLoadError(str(e)) from None
        return cls(**{**fields, "model_name": name, **overrides})

    # -- loading -------------------------------------------------------------------------------

    def _load(self) -> None:
        """Load the model and tokenizer the fields name (``araft_lc.runtime.causal_lm``), and use them."""
        import torch

        if self.adapter is not None and self.adapter not in self.adapters:
            raise ModelLoadError(f"adapter {self.adapter!r} is not loaded: loaded are {list(self.adapters)}")
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_causal_lm(self.model_id, adapters=self.adapters, quantize_4bit=self.load_in_4bit,
                               device=device, trust_remote_code=self.trust_remote_code,
                               allow_pickle=self.allow_pickle)
        self._use(model, load_tokenizer(self.model_id, trust_remote_code=self.trust_remote_code))

    def _use(self, model: Any, tokenizer: Any) -> None:
        """Generate with ``model`` and ``tokenizer``: set up the prefix cache and the batcher."""
        self._model, self._tokenizer = model, tokenizer
        if self.prefix_cache is None:
            self.prefix_cache = not str(model.device).startswith("cuda")
        if self.prefix_cache:
            from araft_lc.runtime.prefix_cache import PrefixCache

            self._cache = PrefixCache(self.prefix_cache_entries)
        if self.batching is None:  # static decode serves calls one at a time, beside a padded batcher
            cpu = not str(model.device).startswith("cuda")
            self.batching = "continuous" if cpu and self.decode == "dynamic" else "padded"
        if self.max_batch_size > 1 and self.batching == "continuous":
            import functools
            import weakref

            from araft_lc.runtime.continuous_batch import ContinuousBatcher

            # The worker holds no reference to this object, so collecting it ends the worker.
            self._batcher = ContinuousBatcher(model, tokenizer, self._cache, self._lock,
                                              functools.partial(_use_adapter, model, bool(self.adapters), merged=self.merge_lora),
                                              self.max_batch_size)
            weakref.finalize(self, self._batcher.close, False)
        elif self.max_batch_size > 1:
            from araft_lc.runtime.batcher import Batcher

            self._batcher = Batcher(self._run_batch, self.max_batch_size, self.batch_wait_ms / 1000)

    # -- LangChain interface ------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "araft-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_name": self.display_name,
            "adapter": self.adapter,
            "prompt": self.prompt,
            "adapters": self.adapters,
            "quantization": "nf4" if self.load_in_4bit else None,
            "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens,
            "decode": self.decode,
            "merge_lora": self.merge_lora,
        }

    @property
    def display_name(self) -> str:
        """The model as the user named it: ``model_name``, else the Hub id or the folder's name,
        with ``+ADAPTER`` where an adapter is active and the name does not already say it."""
        import os

        if self.model_name:
            return self.model_name
        name = os.path.basename(self.model_id.rstrip("/\\")) if os.path.isdir(self.model_id) else self.model_id
        return name + (f"+{self.adapter}" if self.adapter else "")

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def prompt_text(self, messages: Sequence[BaseMessage]) -> str:
        """The exact text the model sees: the tokenizer's chat template, else Llama-2 chat."""
        return render_chat(self._tokenizer, to_turns(messages), add_generation_prompt=True)

    def _decoding(self, stop: Optional[Sequence[str]], kwargs: dict[str, Any]) -> Decoding:
        """This call's decoding settings: the fields, overridden by the call's own keywords.

        Raises:
            TypeError: a keyword this model does not take.
        """
        unknown = set(kwargs) - _CALL_KEYWORDS
        unknown = {k for k in unknown if not k.startswith("ls_")}  # LangChain's tracing hints
        if unknown:
            raise TypeError(f"AraftChatModel does not take {', '.join(sorted(unknown))}: per call it takes "
                            f"{', '.join(sorted(_CALL_KEYWORDS - {'tools', 'tool_choice', 'structured_output'}))}")
        adapter = kwargs.get("adapter", self.adapter)
        self._check_adapter(adapter)
        max_new = kwargs.get("max_tokens", kwargs.get("max_new_tokens", self.max_new_tokens))
        stops = tuple(dict.fromkeys([*(self.stop or ()), *(stop or ())]))
        return Decoding(adapter, stops, int(max_new), float(kwargs.get("temperature", self.temperature)),
                        float(kwargs.get("top_p", self.top_p)), kwargs.get("seed", self.seed))

    def _generation_kwargs(self, d: Decoding, cached: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """generate() arguments for ``d``, with a row's ``_cached`` ones (its generation options
        go into the config: transformers wants them there, not beside it)."""
        from transformers import GenerationConfig

        extra = dict(cached or {})
        options = {k: extra.pop(k) for k in ("compile_config", "disable_compile", "min_new_tokens") if k in extra}
        sample = d.temperature > 0
        config = GenerationConfig(
            max_new_tokens=d.max_new_tokens,
            do_sample=sample,
            temperature=d.temperature if sample else None,
            top_p=d.top_p if sample else None,
            pad_token_id=self._tokenizer.pad_token_id,
            eos_token_id=self._tokenizer.eos_token_id,
            stop_strings=list(d.stop) if d.stop else None,
            return_dict_in_generate=True,
            **options,
        )
        return {"generation_config": config, "tokenizer": self._tokenizer, **extra}

    @property
    def context_length(self) -> Optional[int]:
        """The positions the model takes (its config's ``max_position_embeddings``), if it says."""
        length = getattr(getattr(self._model, "config", None), "max_position_embeddings", None)
        return length if isinstance(length, int) and length > 0 else None

    def _prompt_ids(self, messages: Sequence[BaseMessage], max_new_tokens: int = 0) -> list[int]:
        """The prompt's token ids, checked to fit the context with ``max_new_tokens`` after it.

        Raises:
            ContextLimitError: it does not fit; nothing was prefilled.
        """
        # The text carries its own special tokens (template or Llama-2 format): add none.
        ids = self._tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
        limit = self.context_length
        if limit is not None and len(ids) + max_new_tokens > limit:
            raise ContextLimitError(f"the prompt is {len(ids):,} tokens and a step may write {max_new_tokens:,} "
                                    f"more, past the model's context of {limit:,} positions")
        return ids

    def _one_input(self, ids: list[int]) -> dict[str, Any]:
        import torch

        input_ids = torch.tensor([ids], device=self._model.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def _adapter_context(self, adapter: Optional[str]) -> Any:
        self._check_adapter(adapter)
        return _use_adapter(self._model, bool(self.adapters), adapter, merged=self.merge_lora)

    def _check_adapter(self, adapter: Optional[str]) -> None:
        if adapter is not None and adapter not in self.adapters:
            if not self.adapters:
                raise ValueError(f"adapter {adapter!r} asked for, but the model has no adapters")
            raise ValueError(f"unknown adapter {adapter!r}: loaded are {list(self.adapters)}")
        if self.merge_lora and adapter != self.adapter:
            raise ValueError(f"adapter {adapter!r} asked for, but {self.adapter!r} is merged into the weights "
                             "(merge_lora=True): build the model without merge_lora to switch per call")

    def _run_batch(self, requests: list[Any]) -> list[list[int]]:
        """Generate for requests of one key (their ``Decoding``): the new token ids of each.

        One request reuses the prefix cache; several are left-padded into one ``generate``,
        each row stopping on its own; trailing padding is cut from each row (so a row that
        ended with EOS, when EOS is also the padding token, counts one token less).
        """
        import torch

        d: Decoding = requests[0].key
        device = self._model.device
        with self._lock, torch.inference_mode(), self._adapter_context(d.adapter):
            self._seed(d)
            if len(requests) == 1:
                inputs = self._one_input(requests[0].ids)
                out = self._model.generate(**inputs, **self._generation_kwargs(d, self._cached(d, inputs)),
                                           **_deadline_criteria([requests[0].deadline]))
                self._keep(d.adapter, out)
                return [out.sequences[0, len(requests[0].ids):].tolist()]
            pad = self._tokenizer.pad_token_id
            width = max(len(r.ids) for r in requests)
            input_ids = torch.tensor([[pad] * (width - len(r.ids)) + r.ids for r in requests], device=device)
            mask = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in requests], device=device)
            out = self._model.generate(input_ids=input_ids, attention_mask=mask, **self._generation_kwargs(d),
                                       **_deadline_criteria([r.deadline for r in requests]))
        rows = []
        for row in out.sequences[:, width:].tolist():
            while row and row[-1] == pad:
                row.pop()
            rows.append(row)
        return rows

    def _cached(self, d: Decoding, inputs: Any) -> dict[str, Any]:
        """generate() arguments for one row: its static cache (``decode="static"``, when the call
        fits one) or a cached prefix, and return the cache to keep."""
        ids = inputs["input_ids"][0].tolist()
        if self.decode == "static":
            static = self._static_decoder()
            cache = static.cache_for(d.adapter, ids, d.max_new_tokens)
            if cache is not None:
                return {"cache": cache, **static.generation_options()}
        if self._cache is None:
            return {}
        past = self._cache.lookup(d.adapter, ids)
        return {"cache": past} if past is not None else {}

    def _keep(self, adapter: Optional[str], out: Any) -> None:
        if self._static is not None and self._static.keep(adapter, out.sequences[0].tolist(), out.cache):
            return
        if self._cache is not None:
            self._cache.store(adapter, out.sequences[0].tolist(), out.cache)

    def _static_decoder(self) -> Any:
        if self._static is None:
            from araft_lc.runtime.static_decode import StaticDecoder

            self._static = StaticDecoder(self._model, self.static_cache_lengths, reuse_prefix=bool(self.prefix_cache),
                                         compile=self.compile_decode)
        return self._static

    def warm_up(self, lengths: Optional[Sequence[int]] = None) -> dict[int, float]:
        """Run the static decode path once per cache length (all by default), with the model's
        adapter, so that compilation happens now and not in a user's call.

        Returns:
            cache length -> seconds its first call took (on a GPU, mostly compilation).

        Raises:
            ValueError: the model decodes dynamically (``decode="dynamic"``): nothing to compile.
        """
        import torch

        if self.decode != "static":
            raise ValueError('warm_up compiles the static decode path: build the model with decode="static"')

        def run(ids: list[int], new_tokens: int) -> None:
            d = Decoding(self.adapter, (), new_tokens, 0.0, 1.0, None)
            inputs = self._one_input(ids)
            with self._lock, torch.inference_mode(), self._adapter_context(d.adapter):
                # min_new_tokens: an early EOS would skip the decode step that compiles
                out = self._model.generate(**inputs, **self._generation_kwargs(
                    d, {**self._cached(d, inputs), "min_new_tokens": new_tokens}))
                self._keep(d.adapter, out)

        return self._static_decoder().warm_up(run, lengths)

    @staticmethod
    def _seed(d: Decoding) -> None:
        if d.temperature > 0 and d.seed is not None:
            import torch

            torch.manual_seed(d.seed)

    def _complete(self, messages: Sequence[BaseMessage], d: Decoding, deadline: Optional[float] = None) -> AIMessage:
        """One generation for ``messages``: its text cut at the stop strings, with token usage."""
        ids = self._prompt_ids(messages, d.max_new_tokens)
        if self._batcher is not None and d.temperature == 0:
            new_tokens = self._batcher.submit(ids, d, deadline)
        else:
            new_tokens = self._run_batch([Request(ids, d, deadline)])[0]
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        text, stopped = cut_at_stop_strings(text, d.stop)
        return AIMessage(text, usage_metadata=_usage(len(ids), len(new_tokens)),
                         response_metadata=self._metadata(d, stopped))

    def _metadata(self, d: Decoding, stopped: bool) -> dict[str, Any]:
        """A reply's response_metadata: the model, the adapter, and whether a stop string ended it."""
        return {"model_name": self.model_id, "adapter": d.adapter, "stopped": stopped}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        d = self._decoding(stop, kwargs)
        deadline = kwargs.get("deadline")
        if kwargs.get("tools"):
            message = self._call_tools(messages, d, kwargs["tools"], kwargs.get("prompt") or self.prompt, deadline)
        elif kwargs.get("structured_output"):
            from araft_lc.chat.structured_output import generate_json

            message = generate_json(lambda m: self._complete(m, d, deadline), messages, kwargs["structured_output"],
                                    self.max_parse_retries)
        else:
            message = self._complete(messages, d, deadline)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _call_tools(self, messages: Sequence[BaseMessage], d: Decoding, tools: Sequence[Any], prompt: str,
                    deadline: Optional[float] = None) -> AIMessage:
        """A tool-calling turn in the Araft grammar (``araft_lc.chat.tool_calling``): the reply as a
        tool call or the answer, after at most ``max_parse_retries`` retries of unusable output."""
        from araft_lc.react.prompt import STOP
        from araft_lc.chat.tool_calling import react_prompt, read_reply, tool_specs, with_retry_step

        style = load_prompt(prompt)
        specs = tool_specs(tools)
        d = dataclasses.replace(d, stop=tuple(dict.fromkeys([*d.stop, *STOP])))
        react = react_prompt(style, specs, messages)
        usage: dict[str, int] = {}
        for _ in range(self.max_parse_retries + 1):
            reply = self._complete(react, d, deadline)
            usage = _usage(usage.get("input_tokens", 0) + reply.usage_metadata["input_tokens"],
                           usage.get("output_tokens", 0) + reply.usage_metadata["output_tokens"])
            message, failed = read_reply(reply.text, specs)
            if message is not None:
                break
            react = with_retry_step(react, style, failed)
        else:  # still unusable: the raw text, with no tool call, ends a tool loop
            message = AIMessage(reply.text, response_metadata={"araft_error": failed.observation})
        message.usage_metadata = usage  # type: ignore[assignment]
        message.response_metadata.update(reply.response_metadata, raw=reply.text)
        return message

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if kwargs.get("tools") or kwargs.get("structured_output"):
            # A tool call or a JSON object is whole or nothing: one chunk, after the turn.
            message = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
            chunk = ChatGenerationChunk(message=AIMessageChunk(
                content=message.content, usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata, chunk_position="last",
                tool_call_chunks=[{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": k,
                                   "type": "tool_call_chunk"} for k, c in enumerate(message.tool_calls)]))
            if run_manager:
                run_manager.on_llm_new_token(message.text, chunk=chunk)
            yield chunk
            return
        yield from self._stream_text(messages, self._decoding(stop, kwargs), run_manager, kwargs.get("deadline"))

    def _stream_text(self, messages: Sequence[BaseMessage], d: Decoding,
                     run_manager: Optional[CallbackManagerForLLMRun],
                     deadline: Optional[float] = None) -> Iterator[ChatGenerationChunk]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._one_input(self._prompt_ids(messages, d.max_new_tokens))
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []
        produced: list[int] = []

        def work() -> None:
            try:
                with torch.inference_mode(), self._adapter_context(d.adapter):
                    self._seed(d)
                    out = self._model.generate(**inputs, **self._generation_kwargs(d, self._cached(d, inputs)),
                                               streamer=streamer, **_deadline_criteria([deadline]))
                    self._keep(d.adapter, out)
                    produced.append(out.sequences.shape[1] - inputs["input_ids"].shape[1])
            except BaseException as e:  # re-raised in the caller's thread
                errors.append(e)
                streamer.end()

        # Hold back the tail that could be the start of a stop string until it is decided.
        hold = max((len(s) for s in d.stop), default=1) - 1
        pending, stopped = "", False
        with self._lock:
            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            for piece in streamer:
                if stopped:
                    continue
                pending += piece
                text, stopped = cut_at_stop_strings(pending, d.stop)
                emit = text if stopped else text[: max(0, len(text) - hold)]
                pending = "" if stopped else text[len(emit):]
                if emit:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(emit))
                    if run_manager:
                        run_manager.on_llm_new_token(emit, chunk=chunk)
                    yield chunk
            thread.join()
        if errors:
            raise errors[0]
        # The held-back tail (possibly empty), with the call's usage and metadata: the last chunk.
        tail = "" if stopped else pending
        chunk = ChatGenerationChunk(message=AIMessageChunk(
            tail, usage_metadata=_usage(inputs["input_ids"].shape[1], produced[0] if produced else 0),
            response_metadata=self._metadata(d, stopped), chunk_position="last"))
        if run_manager:
            run_manager.on_llm_new_token(tail, chunk=chunk)
        yield chunk

    # -- the rest of LangChain's chat-model surface --------------------------------------------

    def _get_ls_params(self, stop: Optional[list[str]] = None, **kwargs: Any) -> LangSmithParams:
        """What tracing shows of a call: provider, model, temperature, token cap, stop strings."""
        params = LangSmithParams(
            ls_provider="araft", ls_model_type="chat",
            ls_model_name=str(kwargs.get("model") or self.display_name),
            ls_temperature=float(kwargs.get("temperature", self.temperature)),
            ls_max_tokens=int(kwargs.get("max_tokens", kwargs.get("max_new_tokens", self.max_new_tokens))),
        )
        stops = [*(self.stop or ()), *(stop or ())]
        if stops:
            params["ls_stop"] = stops
        return params

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Optional[Any] = None,
                   prompt: Optional[str] = None, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: each call renders them and the conversation into the Araft prompt
        (``prompt`` style, default the model's) and returns the model's action as a tool call.

        Args:
            tools: ``BaseTool``s, functions, pydantic classes or OpenAI tool dicts.
            tool_choice: accepted for LangChain compatibility; a ReAct model chooses for itself
                between a tool and the answer, so it does not force a call.
            prompt: a prompt style for these tools.
        """
        from langchain_core.utils.function_calling import convert_to_openai_tool

        # Converted once, here: a tool LangChain cannot describe fails now, not at the first call.
        bound = [convert_to_openai_tool(t) for t in tools]
        extra = {"prompt": prompt} if prompt else {}
        return super().bind(tools=bound, tool_choice=tool_choice, **extra, **kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, method: str = "json_schema",
                               strict: Optional[bool] = None, **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Output as ``schema`` (a pydantic class, TypedDict or JSON schema): the model is asked
        for one JSON object matching it, and output that does not parse is shown to it again
        with the error, at most ``max_parse_retries`` times (``araft_lc.chat.structured_output``).
        ``method`` and ``strict`` are accepted for compatibility; every method is JSON in the
        prompt here."""
        from araft_lc.chat.structured_output import structured_runnable

        if kwargs:
            raise TypeError(f"with_structured_output does not take {', '.join(sorted(kwargs))}")
        return structured_runnable(self, schema, include_raw=include_raw)
