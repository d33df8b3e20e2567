"""LangGraph's own cost per agent step: the Araft graph against a plain Python loop doing the
same work (render the prompt, call the model, parse, call the tool), with a stub model and a
stub tool so that nothing else is measured.

    python -m benchmarks.overhead_bench [--runs 200] [--steps 5] [--out benchmarks/overhead_bench.json]

Both paths call the same LangChain chat model and tool through ``invoke`` (callbacks included),
alternating run by run so both see the same machine load. The overhead per step is the
difference of the medians divided by the steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Optional

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

from araft_lc.agent.graph import create_araft_agent, cut_at_stop
from araft_lc.react.chat_format import message_text
from araft_lc.react.parser import Action, parse
from araft_lc.react.prompt import STOP, load_prompt, render_messages
from araft_lc.react.trajectory import Step
from benchmarks.common import emit, stamp


class StubModel(BaseChatModel):
    """Always searches: the run goes to the step cap."""

    @property
    def _llm_type(self) -> str:
        return "stub"

    def _generate(
        self, messages: list[BaseMessage], stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        text = "Thought: look it up.\nAction: [action: Wikipedia, action_input: Philadelphia]"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


@tool("Wikipedia")
def stub_wikipedia(query: str) -> str:
    """returns the introduction of the Wikipedia page that best matches the input"""
    return "Philadelphia is the largest city in Pennsylvania."


def plain_loop(model: BaseChatModel, tools: list, style: Any, question: str, max_steps: int) -> list[Step]:
    """The same run without LangGraph: what the graph's nodes do, in a for loop."""
    names = [t.name for t in tools]
    by_name = {t.name: t for t in tools}
    steps: list[Step] = []
    for _ in range(max_steps):
        reply = model.invoke(render_messages(style, tools, question, steps), stop=list(STOP))
        raw = cut_at_stop(message_text(reply))
        parsed = parse(raw, names)
        if not isinstance(parsed, Action):
            break
        observation = " ".join(str(by_name[parsed.tool].invoke(parsed.tool_input)).split())
        steps.append(Step(parsed.thought, parsed.tool, parsed.tool_input, observation, raw))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--prompt", default="fewshot")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    model, tools, style = StubModel(), [stub_wikipedia], load_prompt(args.prompt)
    agent = create_araft_agent(model, tools, prompt=style, max_steps=args.steps)
    question = "Which magazine was started first, Arthur's Magazine or First for Women?"
    times: dict[str, list[float]] = {"graph": [], "loop": []}
    for _ in range(10):  # warm up both
        agent.invoke({"question": question})
        plain_loop(model, tools, style, question, args.steps)
    for _ in range(args.runs):
        start = time.perf_counter()
        state = agent.invoke({"question": question})
        times["graph"].append(time.perf_counter() - start)
        start = time.perf_counter()
        steps = plain_loop(model, tools, style, question, args.steps)
        times["loop"].append(time.perf_counter() - start)
    assert len(state["steps"]) == len(steps) == args.steps
    median = {k: statistics.median(v) * 1000 for k, v in times.items()}
    result = {
        **stamp("python -m benchmarks.overhead_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
        "runs": args.runs,
        "steps_per_run": args.steps,
        "ms_per_run_median": {k: round(v, 3) for k, v in median.items()},
        "overhead_ms_per_step": round((median["graph"] - median["loop"]) / args.steps, 3),
        "target_ms_per_step": 2.0,
    }
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
