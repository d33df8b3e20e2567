"""The GPU benchmark's result as a table and as its RESULTS.md section, beside the machine.

``rows`` feeds the table ``python -m benchmarks --gpu`` prints; ``section`` is the Markdown
that ``--save`` puts between the section's markers in RESULTS.md (replacing an earlier run's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["rows", "section", "save_section"]

START, END = "<!-- gpu_bench: start -->", "<!-- gpu_bench: end -->"
CONFIGS = {
    "dynamic": "dynamic cache (today's path)",
    "static": "static cache",
    "static_merged": "static cache, LoRA merged",
}


def _get(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return "-"
        d = d[k]
    return d


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, measured, target) for every figure the run reached; a stage that did not finish
    says so."""
    out: list[tuple[str, str, str]] = []
    for precision, goal in (("bf16", ">= 120 tok/s"), ("nf4", ">= 80 tok/s")):
        res = result.get(precision)
        if not isinstance(res, dict):
            meta = result.get(f"{precision}_meta", {})
            out.append((f"{precision}: not measured", str(meta.get("rc", "not run")), ""))
            continue
        label = res.get("label", precision)
        for name, words in CONFIGS.items():
            if name not in res:
                continue
            r = res[name]
            if name != "dynamic":
                words += ", compiled" if r.get("compiled") else ", not compiled"
            out.append(
                (
                    f"{label} + LoRA, {words}: batch-1 decode",
                    f"{_get(r, 'decode_tok_s')} tok/s",
                    goal if name != "dynamic" else "",
                )
            )
            out.append(
                (
                    f"{label}, {words}: agent s/run, prefix cache on / off",
                    f"{_get(r, 'agent_prefix_on', 's_per_run')} / {_get(r, 'agent_prefix_off', 's_per_run')} s",
                    "",
                )
            )
            out.append(
                (
                    f"{label}, {words}: agent generated tok/s (cache on)",
                    f"{_get(r, 'agent_prefix_on', 'gen_tok_s')}",
                    "",
                )
            )
            if name != "dynamic":
                compile_s = r.get("compile_s", {})
                out.append(
                    (
                        f"{label}, {words}: warm-up (compile) per cache length",
                        ", ".join(f"{k}: {v} s" for k, v in compile_s.items()) or "-",
                        "reported",
                    )
                )
                out.append(
                    (
                        f"{label}, {words}: agent steps the same as dynamic (share of steps)",
                        f"{r.get('same_steps_as_dynamic', '-')} ({r.get('same_step_share', '-')})",
                        "True (within dtype)",
                    )
                )
        for key, error in res.items():
            if key.endswith("_error"):
                out.append((f"{label}, {CONFIGS.get(key[:-6], key[:-6])}: failed", str(error), ""))
        if "concurrency" in res:
            c = res["concurrency"]
            out.append(
                (
                    f"{label}: {c['n']} agent runs at once / one at a time (dynamic)",
                    f"{c['speedup_vs_one_at_a_time']}x ({c['gen_tok_s']} tok/s)",
                    ">= 3x",
                )
            )
    return out


def section(result: dict[str, Any]) -> str:
    """The RESULTS.md section of one run: command, machine, date, commit, then the table."""
    stamp = result.get("stamp", {})
    lines = [
        START,
        f"## GPU decode and the agent on {stamp.get('machine', '?')} (issue 17, parts 1 and 5)",
        "",
        f"Command: `{stamp.get('command', '?')}`, {stamp.get('date', '?')}, project at "
        f"{stamp.get('commit', '?')}, the {stamp.get('shape', '?')} shape with random weights "
        "(benchmarks/gpu_bench.py). Raw numbers: `gpu_bench.json`.",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
    ]
    lines += [f"| {f} | {m} | {t} |" for f, m, t in rows(result)]
    return "\n".join([*lines, END]) + "\n"


def save_section(results_md: Path, result: dict[str, Any]) -> None:
    """Put this run's section into ``results_md``: in place of the last one, else at the end."""
    text = results_md.read_text(encoding="utf-8") if results_md.exists() else ""
    new = section(result)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + new.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + new
    results_md.write_text(text, encoding="utf-8")
