"""The settings of the runs over question sets: ``araft generate`` and ``araft eval`` take the
agent's ``RunSettings`` and add their questions and outputs. Each run saves them beside its
outputs (``SETTINGS`` in an eval folder, ``OUT.settings.yaml`` beside generate's file), so that
``--config`` on that file runs it again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

from araft_lc.agent.settings import RunSettings
from araft_lc.storage.config_file import ConfigError, config_field

__all__ = ["GenerateSettings", "EvalSettings", "SETTINGS", "ORDERS", "THOUGHTS", "generate_settings_path"]

ORDERS = ("question", "reversed")  # the orders a teacher reads a comparison question's pages in
# what a teacher's thought quotes of the page it read (evals.oracle.OracleChatModel.quote)
THOUGHTS = ("first_sentence", "evidence")

SETTINGS = "settings.yaml"  # in an eval's --out folder


def generate_settings_path(out: str | Path) -> Path:
    """``OUT.settings.yaml`` beside generate's ``--out`` file (``t.jsonl``: ``t.settings.yaml``)."""
    out = Path(out)
    return out.with_name(out.stem + ".settings.yaml")


@dataclass
class _QuestionRunSettings(RunSettings):
    questions: list[str] = config_field([], "HotpotQA files (either format)")
    concurrency: int = config_field(1, "questions run at once (greedy calls batch)")

    REQUIRED: ClassVar[tuple[str, ...]] = ("questions", "out")
    RESUMABLE: ClassVar[tuple[str, ...]] = (*RunSettings.RESUMABLE, "questions", "out", "concurrency")


@dataclass
class GenerateSettings(_QuestionRunSettings):
    """A teacher over questions, its correct trajectories kept."""

    out: str = config_field("", "kept trajectories (JSONL); the rest go to *.rejects.jsonl")
    limit: Optional[int] = config_field(None, "the first N questions only")
    min_f1: Optional[float] = config_field(None, "keep runs with F1 >= this (default: exact match)")
    order: str = config_field(
        "question",
        "the order a teacher reads a comparison question's pages in: "
        "question (as it names them) or reversed, which runs the comparison "
        "questions only (a second trajectory for each: more SFT data)",
    )

    thoughts: str = config_field(
        "first_sentence",
        "what a teacher's thought quotes of the page it read: "
        "first_sentence (the original's way) or evidence (the "
        "sentence naming the next page or the answer, else the "
        "one closest to the question)",
    )

    RESUMABLE: ClassVar[tuple[str, ...]] = (*_QuestionRunSettings.RESUMABLE, "limit")

    def check_values(self) -> None:
        super().check_values()
        if self.order not in ORDERS:
            raise ConfigError(f"order {self.order!r} is not one of {', '.join(ORDERS)}")
        if self.thoughts not in THOUGHTS:
            raise ConfigError(f"thoughts {self.thoughts!r} is not one of {', '.join(THOUGHTS)}")


@dataclass
class EvalSettings(_QuestionRunSettings):
    """A model on a sample of questions, every run recorded and reported."""

    out: str = config_field("", f"the run's folder (resumed if it exists; its settings are saved there as {SETTINGS})")
    levels: Optional[str] = config_field(None, "questions per level, e.g. easy=100,medium=100,hard=100")
    limit: Optional[int] = config_field(None, "a seeded sample of N questions (without --levels)")
    exclude: Optional[list[str]] = config_field(None, "refuse questions found in these training/trajectory files")
    repeats: int = config_field(1, "runs per question with seeds seed, seed+1, ...")
    label: Optional[str] = config_field(None, "the run's name in reports (default: the --out folder's name)")

    # A resumed folder may grow its sample (more questions, levels, repeats), never change how one runs.
    RESUMABLE: ClassVar[tuple[str, ...]] = (*_QuestionRunSettings.RESUMABLE, "levels", "limit", "exclude", "repeats")
