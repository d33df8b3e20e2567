"""``load_causal_lm``: one way to load a transformers causal LM, with LoRA adapters on top, for
inference (``AraftChatModel``), training (``finetune``) and export (``araft export merge``).

What a model folder may run is decided here, for all of them: weights are safetensors unless
``allow_pickle`` (a pickle runs code when loaded), and a folder's own Python code runs only with
``trust_remote_code``. 4-bit is NF4 with double quantisation and bf16 compute, on CUDA only.
torch, transformers and peft are imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

from araft_lc.storage.error_text import error_text

__all__ = ["load_causal_lm", "load_tokenizer", "pad_with_eos", "nf4_config", "ModelLoadError"]


class ModelLoadError(ValueError):
    """A model or adapter that cannot be loaded; the message says what to do."""


def nf4_config() -> Any:
    """The 4-bit quantisation of the Araft models, for inference and QLoRA training alike: NF4,
    double quantisation, bf16 compute (bitsandbytes, CUDA only)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_causal_lm(
    path: str,
    *,
    adapters: Union[str, Mapping[str, str], None] = None,
    quantize_4bit: bool = False,
    dtype: Any = None,
    device: Optional[str] = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    trainable: bool = False,
) -> Any:
    """A causal LM from a folder or Hub id (from the local cache when offline).

    Args:
        path: the model's folder or Hub id.
        adapters: a LoRA adapter folder (loaded as ``default``), or several as ``{name: path}``;
            the first is active. With adapters the model is a peft ``PeftModel``.
        quantize_4bit: load NF4 (``nf4_config``) on the current CUDA device.
        dtype: the weights' dtype when not quantised; None: bf16 on a CUDA ``device``, else fp32.
        device: move the model there (``"cuda"``, ``"cpu"``); None leaves it where it loaded
            (the CPU, or the GPU when quantised), for a trainer to place.
        trust_remote_code: run Python code shipped in the folder (off: built-in classes only).
        allow_pickle: load ``.bin`` (pickle) weights; off, weights must be safetensors.
        trainable: load the adapters trainable, for a trainer (which sets training mode itself);
            otherwise the model is put in ``eval()`` mode.

    Raises:
        ModelLoadError: (a ValueError) one line naming the folder or adapter, the cause and the fix.
    """
    import torch
    from transformers import AutoModelForCausalLM

    # Code and pickles from a model folder run only when asked for: weights are safetensors.
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "use_safetensors": None if allow_pickle else True}
    if quantize_4bit:
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"4-bit loading of {path} needs a CUDA GPU (bitsandbytes NF4); "
                "on a CPU load it unquantised (load_in_4bit=False, or --no-4bit)"
            )
        kwargs["quantization_config"] = nf4_config()
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    else:
        kwargs["dtype"] = dtype or (torch.bfloat16 if (device or "").startswith("cuda") else torch.float32)
    _refuse_pickle_only("model", path, "pytorch_model*.bin", allow_pickle)
    model: Union[PreTrainedModel, PeftModel]  # a PeftModel once an adapter is loaded
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:  # not there (offline, a typo) or not a model folder
        raise ModelLoadError(
            f"cannot load model {path!r} ({error_text(e)}): pass a local folder, a preset "
            f"(smollm2-135m, araft-sft, araft-dpo), or download it first while online (`hf download {path}`)"
        ) from None
    except Exception as e:
        raise ModelLoadError(
            f"cannot load model {path!r} ({error_text(e)}): pass a folder whose config.json describes its weights"
        ) from None
    if device is not None and not quantize_4bit:
        # transformers declares `to` with functools.wraps(torch.nn.Module.to): typeshed's _Wrapped
        # type does not bind `self`, so it reads `device` as the module
        model.to(device)  # type: ignore[arg-type]
    if isinstance(adapters, str):
        adapters = {"default": adapters}
    for i, (name, adapter) in enumerate((adapters or {}).items()):
        _refuse_pickle_only(f"adapter {name!r} from", adapter, "adapter_model.bin", allow_pickle)
        try:
            if i == 0:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter, adapter_name=name, is_trainable=trainable)
            else:
                model.load_adapter(adapter, adapter_name=name, is_trainable=trainable)
        except (OSError, ValueError) as e:
            raise ModelLoadError(
                f"cannot load adapter {name!r} from {adapter!r} ({error_text(e)}): pass a "
                "folder holding adapter_config.json, or download it first while online"
            ) from None
        except Exception as e:
            raise ModelLoadError(
                f"cannot load adapter {name!r} from {adapter!r} on {path!r} ({error_text(e)}): "
                "pass an adapter trained on this model"
            ) from None
    if not trainable:
        model.eval()
    return model


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer in a model folder or Hub repo; one without a pad token pads with EOS.

    Raises:
        ModelLoadError: one line naming the folder and the cause, of whatever kind.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:
        raise ModelLoadError(
            f"cannot load tokenizer {path!r} ({error_text(e)}): pass a folder holding tokenizer files, or a preset"
        ) from None
    return pad_with_eos(tokenizer)


def default_device() -> str:
    """Where a model runs when the caller does not say: the CUDA GPU if there is one, else the CPU
    (also where torch is not installed: llama.cpp runs there)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pad_with_eos(tokenizer: Any) -> Any:
    """``tokenizer``, padding with its EOS token when it has no pad token (batches need one)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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
