"""Does a model copy a tool it does not have from the few-shot examples? SmolLM2-135M (base,
greedy, few-shot prompt) on arithmetic questions with a calculator, three ways:

- ``calculator, all examples``: the prompt before examples were filtered (every example uses
  Wikipedia, which the agent does not have);
- ``calculator, filtered``: today's prompt (no example fits, so the zero-shot instructions);
- ``wikipedia + calculator``: both tools (the examples fit and stay).

    python -m benchmarks.tool_prompt_bench [--questions 8] [--out benchmarks/tool_prompt_bench.json]

For each, the share of actions that name a tool the agent lacks (``unknown_tool``), the share of
steps that do not parse, and how often each tool was called. The three run question by question,
side by side, so they see the same machine load.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any, Optional, Sequence

from langchain_core.tools import BaseTool, tool

from benchmarks.common import DATA, emit, stamp

QUESTIONS = [
    "What is 17 + 25?",
    "What is 12 times 11?",
    "What is 144 divided by 12?",
    "What is 1000 minus 1?",
    "What is 3 to the power of 4?",
    "What is 250 + 750?",
    "What is 81 - 19?",
    "What is 9 times 9?",
    "What is 2 + 2?",
    "What is 60 divided by 4?",
]


@tool
def Calculator(expression: str) -> str:
    """evaluates an arithmetic expression such as 2 * (3 + 4)"""
    allowed = set("0123456789+-*/(). ")
    if not set(expression) <= allowed:
        return f"Cannot evaluate {expression!r}: use digits and + - * / ( ) only."
    try:
        return str(eval(expression, {"__builtins__": {}}))
    except Exception as e:
        return f"Cannot evaluate {expression!r} ({type(e).__name__})."


def keep_all_examples(style: Any) -> Any:
    """The prompt style as it rendered before filtering: every example, whatever the tools."""

    class Unfiltered(type(style)):
        def render_system(self, tools: Sequence[BaseTool]) -> str:
            from araft_lc.react.parser import format_action
            from araft_lc.react.tool_input import input_hint

            lines = "\n".join(
                f"{format_action(t.name, input_hint(t))}: {' '.join(t.description.split())}" for t in tools
            )
            return self.system.format(tools=lines, examples="\n\n".join(self.examples))

    return Unfiltered(**{f: getattr(style, f) for f in ("name", "version", "system", "examples", "layout")})


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from araft_lc.agent.graph import create_araft_agent
    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.react.prompt import load_prompt
    from araft_lc.wiki.select import wikipedia_tool

    model = AraftChatModel.from_preset("smollm2-135m", max_new_tokens=args.max_new_tokens)
    fewshot = load_prompt("fewshot")
    wiki = wikipedia_tool(DATA / "wiki_corpus.jsonl.gz")
    setups = {
        "calculator, all examples": ([Calculator], keep_all_examples(fewshot)),
        "calculator, filtered": ([Calculator], fewshot),
        "wikipedia + calculator": ([wiki, Calculator], fewshot),
    }
    agents = {
        name: create_araft_agent(model, tools, prompt=style, max_steps=args.max_steps)
        for name, (tools, style) in setups.items()
    }
    counts = {name: Counter() for name in setups}
    for k, question in enumerate(QUESTIONS[: args.questions]):
        for name, agent in agents.items():
            state = agent.invoke({"question": question})
            c = counts[name]
            c["runs"] += 1
            c["answered"] += state["status"] == "answered"
            for step in state["steps"]:
                c["steps"] += 1
                c["parse_error"] += step["error"] == "parse_error"
                c["unknown_tool"] += step["error"] == "unknown_tool"
                if step["action"] and step["action"] != "Answer":
                    c[f"called {step['action']}"] += 1
        print(f"{k + 1}/{args.questions} questions", file=sys.stderr, flush=True)
    result = {
        **stamp("python -m benchmarks.tool_prompt_bench " + " ".join(argv or sys.argv[1:])),
        "model": "smollm2-135m (base), greedy, fewshot prompt",
        "max_steps": args.max_steps,
        "setups": {
            name: {**dict(c), "unknown_tool_share_of_steps": round(c["unknown_tool"] / max(1, c["steps"]), 3)}
            for name, c in counts.items()
        },
    }
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
