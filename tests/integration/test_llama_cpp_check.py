"""The one-time check before llama.cpp is chosen: a child process that loads the weights and
decodes, its answer remembered; a child that dies (as llama.cpp's AMX path does on some CPUs)
sends a model left to choose to torch with one warning, and is an error where llama.cpp was asked
for by name. And the model parameters that avoid the known fault."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="the llama.cpp backend is the llamacpp extra: pip install 'araft[llamacpp]'")

import araft_lc.runtime.llama_cpp.check as check
import araft_lc.runtime.llama_cpp.lib as lib
from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.runtime.torch.causal_lm import ModelLoadError

# A child that dies as a native fault kills a process: a real SIGSEGV, in place of the weights' check.
SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]


@pytest.fixture
def crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "PROBE", SEGFAULT)


def test_the_check_decodes_in_a_child_once_and_is_remembered(
    smollm2: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARAFT_CACHE_DIR", str(tmp_path))  # not asked yet, whatever ran before in the session
    first = check.check_llama_cpp(smollm2[1])
    assert first.ok and first.reason == "" and not first.cached and first.seconds > 0
    again = check.check_llama_cpp(smollm2[1])
    assert again.ok and again.cached and again.seconds == first.seconds


def test_a_child_that_dies_is_a_failed_check_naming_the_signal(smollm2: tuple[str, str], crashing: None) -> None:
    result = check.check_llama_cpp(smollm2[1])
    assert not result.ok and "SIGSEGV" in result.reason
    assert check.check_llama_cpp(smollm2[1]).cached  # a fault is remembered too: no crash each time


def test_a_child_killed_from_outside_is_asked_again(smollm2: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    monkeypatch.setattr(check, "PROBE", [sys.executable, "-c", killed])
    first = check.check_llama_cpp(smollm2[1])
    assert not first.ok and "SIGKILL" in first.reason
    assert not check.check_llama_cpp(smollm2[1]).cached  # out of memory, say: not the CPU's answer


def test_the_answer_is_asked_again_for_another_cpu(smollm2: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    key = check._key(Path(smollm2[1]))
    monkeypatch.setattr(lib, "cpu_flags", lambda: frozenset({"avx2", "amx_tile"}))
    assert check._key(Path(smollm2[1])) != key


def test_a_model_left_to_choose_falls_back_to_torch_with_one_warning(smollm2: tuple[str, str], crashing: None) -> None:
    with pytest.warns(RuntimeWarning) as caught:
        model = AraftChatModel(model_id=smollm2[1], max_batch_size=1, max_tokens=4)
    [warning] = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    text = str(warning.message)
    assert "\n" not in text and "SIGSEGV" in text and "--backend torch" in text
    assert model.backend == "torch" and "SIGSEGV" in model.backend_reason
    assert model.invoke("Name a city.").content  # and it answers, on torch


def test_llama_cpp_asked_for_by_name_is_an_error_when_the_check_fails(
    smollm2: tuple[str, str], crashing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import araft

    with pytest.raises(ModelLoadError, match=r"llama.cpp cannot run on this machine: .*SIGSEGV.*--backend torch"):
        AraftChatModel(model_id=smollm2[1], backend="llama.cpp")
    assert araft.main(["info", "--model", "smollm2-135m", "--backend", "llama.cpp"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line, no traceback


def test_without_torch_a_failed_check_names_the_install(
    smollm2: tuple[str, str], crashing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import araft_lc.chat.engine_choice as choice

    monkeypatch.setattr(choice, "torch_installed", lambda: False)
    with pytest.raises(ModelLoadError, match=r"araft\[torch\]"):
        AraftChatModel(model_id=smollm2[1])


def test_extra_buffer_types_are_off_only_where_the_cpu_advertises_amx(
    smollm2: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    assert lib.model_params(llama_cpp, frozenset({"avx2", "amx_tile", "amx_int8"})).use_extra_bufts is False
    assert lib.model_params(llama_cpp, frozenset({"avx2", "avx512f"})).use_extra_bufts is True
    usual = AraftChatModel(model_id=smollm2[1], backend="llama.cpp", max_batch_size=1, max_tokens=12)
    monkeypatch.setattr(lib, "cpu_flags", lambda: frozenset({"avx2", "amx_tile", "amx_int8", "amx_bf16"}))
    amx = AraftChatModel(model_id=smollm2[1], backend="llama.cpp", max_batch_size=1, max_tokens=12)
    assert usual.engine.extra_buffers is not amx.engine.extra_buffers is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert amx.invoke("Name a city.").content == usual.invoke("Name a city.").content
    usual.engine.close()
    amx.engine.close()
