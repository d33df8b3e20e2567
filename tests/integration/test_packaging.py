"""The built wheel's metadata: ranges, not pins, so that Araft installs beside an app's own
LangChain; the lean [llamacpp] install brings no torch; and constraints.txt (what CI runs) sits
inside every range the metadata declares."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def requires(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The wheel's Requires-Dist lines, built as pip builds it (setuptools, no isolation: offline)."""
    import shutil

    out, tree = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md", "araft.py"):  # built from a copy: no build/ left here
        shutil.copy(ROOT / name, tree)
    for package in ("araft_lc", "evals", "finetune"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(tree)],
        check=True,
        capture_output=True,
        text=True,
    )
    [wheel] = out.glob("araft-*.whl")
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    return [line.partition(":")[2].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def _split(requirement: str) -> tuple[str, str]:
    """``"name[x]>=1,<2; extra == 'y'"`` -> (the requirement, the marker)."""
    spec, _, marker = requirement.partition(";")
    return spec.strip(), marker.strip()


def test_no_dependency_is_pinned_exactly(requires: list[str]) -> None:
    assert len(requires) > 10
    pinned = [r for r in requires if "==" in _split(r)[0]]
    assert not pinned, f"exact pins keep Araft out of apps with other versions: {pinned}"
    core = {r.partition("<")[0].partition(">")[0] for r, marker in map(_split, requires) if not marker}
    assert {"langchain-core", "langgraph"} <= core


def test_the_llama_cpp_install_brings_no_torch(requires: list[str]) -> None:
    from packaging.requirements import Requirement

    def names(extra: str) -> set[str]:
        reqs = [Requirement(r) for r in requires]
        chosen = [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": extra})]
        return {r.name for r in chosen}

    lean = names("llamacpp")
    assert "llama-cpp-python" in lean and "gguf" in lean
    assert not lean & {"torch", "transformers", "peft", "accelerate", "bitsandbytes", "trl"}
    assert {"torch", "transformers", "peft"} <= names("torch")


def test_constraints_pin_versions_inside_the_declared_ranges(requires: list[str]) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    for text in requires:
        requirement = Requirement(text)
        if requirement.name == "araft":
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside {requirement.specifier}"
        )
