"""The llama.cpp library as Araft uses it: whether it is installed, starting it once, and the model
parameters for this CPU.

llama-cpp-python 0.3.36's llama.cpp faults at its first decode on CPUs that advertise AMX (Intel
Sapphire Rapids and later: ``ldtilecfg`` in ``ggml_backend_amx_mul_mat``, ggml-org/llama.cpp#26954);
its extra buffer types, the AMX layout among them, are switched off there (``model_params``).
Whether llama.cpp runs on a CPU at all is asked of a child process (``araft_lc.runtime.llama_cpp.check``).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

__all__ = [
    "AMX_FLAGS",
    "INSTALL_HINT",
    "advertises_amx",
    "cpu_flags",
    "llama_cpp_installed",
    "model_params",
    "start_llama_cpp",
]

INSTALL_HINT = "pip install 'araft[llamacpp]' (llama-cpp-python compiles llama.cpp on install: minutes)"
AMX_FLAGS = frozenset({"amx_tile", "amx_int8", "amx_bf16"})


def llama_cpp_installed() -> bool:
    """Whether ``llama_cpp`` (the ``llamacpp`` extra) can be imported."""
    return importlib.util.find_spec("llama_cpp") is not None


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel lists them (``/proc/cpuinfo``); empty where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def advertises_amx(flags: Optional[frozenset[str]] = None) -> bool:
    """Whether the CPU (``flags``, default this one's) advertises AMX."""
    return bool(AMX_FLAGS & (cpu_flags() if flags is None else flags))


def model_params(llama: Any, flags: Optional[frozenset[str]] = None) -> Any:
    """llama.cpp's model parameters for this CPU: its defaults, with the extra buffer types off
    where the CPU advertises AMX (their AMX path faults there; elsewhere they repack some weight
    types for speed, so they stay on)."""
    params = llama.llama_model_default_params()
    params.use_extra_bufts = not advertises_amx(flags)
    return params


_started = False


def start_llama_cpp() -> Any:
    """The ``llama_cpp`` module, started once: its CPU backends loaded where they are separate
    libraries, its log routed through the "llama-cpp-python" logger at ERROR unless the user set a
    level (llama.cpp logs every tensor it loads otherwise), ``llama_backend_init`` called.

    A build with run-time CPU dispatch (``GGML_BACKEND_DL`` with ``GGML_CPU_ALL_VARIANTS``: the
    portable one, docs/performance.md) ships one CPU backend per CPU generation in the wheel's
    ``bin/`` folder, and llama.cpp registers none of them until asked; llama-cpp-python 0.3.36
    does not ask, so every model load would fail with "no backends are loaded". They are loaded
    into the ggml that libllama links (``lib/libggml.so.0``: a wheel holds copies, not links, so
    another name would be a second ggml with a registry of its own).
    """
    global _started
    import llama_cpp
    import llama_cpp.llama

    if _started:
        return llama_cpp
    quiet = logging.getLogger("llama-cpp-python")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.ERROR)
    package = Path(llama_cpp.__file__).parent
    variants = package.parent / "bin"
    if any(variants.glob("libggml-cpu-*.so")) and not any((package / "lib").glob("libggml-cpu.so*")):
        ggml = ctypes.CDLL(str(package / "lib" / "libggml.so.0"))
        ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
        ggml.ggml_backend_load_all_from_path(str(variants).encode())
    llama_cpp.llama_backend_init()
    _started = True
    return llama_cpp
