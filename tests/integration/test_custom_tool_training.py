"""One experiment with a tool that is not Wikipedia, end to end, on the tiny model: a rule teacher
answers arithmetic questions with a Calculator; its runs are generated and recorded with their
tools, converted to SFT records whose prompts list the Calculator, and a student is trained on
them; the trained student's prompt lists the Calculator, and its first step calls it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

import pytest
from helpers import act, answer
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

from araft import main

pytest.importorskip("trl")


@tool
def Calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as 12 * 7."""
    left, op, right = expression.split()
    return str({"*": int(left) * int(right), "+": int(left) + int(right)}[op])


class ArithmeticTeacher(BaseChatModel):
    """A rule teacher at the edge of the world, as the oracle is for HotpotQA: it multiplies with
    the Calculator, then answers with what the Calculator said."""

    @property
    def _llm_type(self) -> str:
        return "arithmetic-teacher"

    def _generate(
        self, messages: list[BaseMessage], stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        seen = "\n".join(str(m.content) for m in messages[1:])
        observed = re.findall(r"Observation: (\d+)", seen)
        if observed:
            text = answer(observed[-1])
        else:
            a, b = re.search(r"What is (\d+) times (\d+)\?", seen).groups()
            text = act("Calculator", f"{a} * {b}", thought="I need to multiply the two numbers.")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def test_a_student_trained_on_calculator_runs_calls_the_calculator(tiny_llama: Path, tmp_path: Path) -> None:
    from araft_lc.agent.graph import create_araft_agent
    from araft_lc.agent.recorder import TrajectoryRecorder
    from araft_lc.chat.chat_model import AraftChatModel
    from evals.generate import generate
    from evals.hotpotqa import load_questions
    from finetune.config import SFTRunConfig, load_config
    from finetune.sft import train_sft

    pairs = [(3, 4), (6, 7), (12, 5), (8, 9), (11, 3), (4, 4)]
    questions = tmp_path / "arith.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"id": f"m{a}x{b}", "question": f"What is {a} times {b}?", "answer": str(a * b)}) + "\n"
            for a, b in pairs
        )
    )
    teacher = create_araft_agent(ArithmeticTeacher(), [Calculator], prompt="zeroshot_turns")
    runs = tmp_path / "runs.jsonl"
    summary = generate(teacher, list(load_questions(questions)), runs, min_f1=1.0, progress=False)
    assert summary.kept == len(pairs)
    kept = [json.loads(line) for line in runs.read_text().splitlines()]
    assert all([t["name"] for t in record["tools"]] == ["Calculator"] for record in kept)

    records = tmp_path / "sft.jsonl"
    assert (
        main(
            [
                "convert",
                "sft",
                str(runs),
                "--out",
                str(records),
                "--prompt-style",
                "zeroshot_turns",
                "--granularity",
                "trajectory",
            ]
        )
        == 0
    )
    system = json.loads(records.read_text().splitlines()[0])["messages"][0]["content"]
    assert "[action: Calculator" in system and "Wikipedia" not in system

    config = load_config(
        SFTRunConfig,
        None,
        {
            "model": str(tiny_llama),
            "data": str(records),
            "output_dir": str(tmp_path / "student"),
            "load_in_4bit": False,
            "use_cpu": True,
            "bf16": False,
            "target_modules": "all-linear",
            "learning_rate": 5e-3,
            "gradient_accumulation_steps": 1,
            "warmup_ratio": 0.0,
            "logging_steps": 10,
            "save_steps": 1000,
            "num_train_epochs": 30,
        },
    )
    adapter = train_sft(config)

    student = AraftChatModel(model_id=str(tiny_llama), adapters={"s": str(adapter)}, adapter="s", max_tokens=96)
    assert student.prompt == "zeroshot_turns"  # the adapter's own, from its data card
    recorder = TrajectoryRecorder()
    agent = create_araft_agent(student, [Calculator], max_steps=1)
    agent.invoke({"question": "What is 9 times 8?"}, {"callbacks": [recorder]})
    [record] = recorder.records
    assert [t["name"] for t in record.tools] == ["Calculator"]
    assert "[action: Calculator" in record.calls[0]["messages"][0]["content"]
    assert record.steps[0].action == "Calculator", record.steps[0].raw
