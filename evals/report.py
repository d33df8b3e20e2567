"""Reports of evaluation runs: one run (``DIR/report.md``, ``.json``, ``.png``) or several side by
side (``araft report DIR ...``), in the shape of the original's table: levels by F1, plus the
agent metrics. Files are whole or absent: written to a temporary name, then renamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from araft_lc.storage.atomic_file import replace_atomically, write_text_atomically
from evals.run_metrics import METRICS, summarize
from evals.runner import read_records

__all__ = ["write_report", "load_report", "compare"]

_RUN_ONLY = ("repeat", "level", "type")
HEADERS = [f"{label}{' ' + unit if unit else ''}" for label, unit in METRICS.values()]


def _cell(stat: dict[str, float], repeats: int) -> str:
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if repeats > 1 else f"{stat['mean']:.1f}"


def _markdown(report: dict[str, Any]) -> str:
    repeats = report["repeats"]
    head = ["level", "n", *HEADERS]
    lines = [
        f"# Evaluation: {report['label']}",
        "",
        f"{report['questions']} questions, {repeats} repeat{'s' if repeats > 1 else ''}"
        + (" (mean ± std across repeats)" if repeats > 1 else "")
        + "; produced by "
        + ", ".join(f"{k}={v}" for k, v in report["producer"].items()),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for level, stats in report["levels"].items():
        lines.append(
            "| " + " | ".join([level, str(stats["f1"]["n"]), *[_cell(stats[m], repeats) for m in METRICS]]) + " |"
        )
    if "best_of_repeats" in report:
        best = report["best_of_repeats"]
        lines += [
            "",
            f"Best of the {repeats} repeats per question (pass@{repeats}): F1 {best['f1']:.1f} %, "
            f"EM {best['em']:.1f} %.",
        ]
    return "\n".join(lines) + "\n"


def _bars(path: Path, runs: Sequence[dict[str, Any]], metric: str = "f1") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = list(dict.fromkeys(level for r in runs for level in r["levels"]))
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(levels), 3.2))
    for i, run in enumerate(runs):
        means = [run["levels"].get(level, {}).get(metric, {}).get("mean", 0.0) for level in levels]
        stds = [run["levels"].get(level, {}).get(metric, {}).get("std", 0.0) for level in levels]
        ax.bar([x + i * width for x in range(len(levels))], means, width, yerr=stds, label=run["label"], capsize=2)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(levels))], levels)
    ax.set_ylabel(f"{METRICS[metric][0]} {METRICS[metric][1]}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def write_report(out_dir: str | Path, *, label: str | None = None, seconds: float | None = None) -> dict[str, Any]:
    """Summarise ``DIR/trajectories.jsonl`` into ``report.json``, ``report.md`` and ``report.png``."""
    out = Path(out_dir)
    records = read_records(out)
    if not records:
        raise ValueError(f"{out / 'trajectories.jsonl'} is empty: nothing to report")
    producer = {k: v for k, v in records[0].producer.items() if k not in _RUN_ONLY}
    report = {"label": label or producer.get("label") or out.name, "producer": producer, **summarize(records)}
    if seconds is not None:
        report["seconds"] = seconds
    write_text_atomically(out / "report.json", json.dumps(report, indent=2) + "\n")
    write_text_atomically(out / "report.md", _markdown(report))
    _bars(out / "report.png", [report])
    return report


def load_report(out_dir: str | Path) -> dict[str, Any]:
    """``DIR/report.json``, made from its trajectories if it is missing."""
    path = Path(out_dir) / "report.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return write_report(out_dir)


def _paired_lines(dirs: Sequence[str | Path], runs: Sequence[dict[str, Any]]) -> list[str]:
    """Each run against the first, on the questions both ran: the paired bootstrap of the F1
    difference (``evals.paired``); a note instead where a run kept only its report."""
    from evals.paired import paired_bootstrap, per_question_f1

    if len(dirs) < 2:
        return []
    if not all((Path(d) / "trajectories.jsonl").is_file() for d in dirs):
        return ["", "(no paired F1 difference: a run folder holds its report only, not trajectories.jsonl)"]
    base = per_question_f1(read_records(dirs[0]))
    lines = [
        "",
        f"| F1 difference vs {runs[0]['label']} (paired bootstrap) | questions | mean | 95% interval |",
        "|---|---|---|---|",
    ]
    for d, r in zip(dirs[1:], runs[1:], strict=True):
        try:
            diff = paired_bootstrap(base, per_question_f1(read_records(d)))
        except ValueError:  # another sample of questions: nothing to pair
            lines.append(f"| {r['label']} | 0 | - | - |")
            continue
        lines.append(f"| {r['label']} | {diff.n} | {diff.mean:+.1f} | [{diff.low:+.1f}, {diff.high:+.1f}] |")
    return lines


def compare(dirs: Sequence[str | Path], png: str | Path | None = None) -> str:
    """A markdown comparison of several runs: F1 by level (the original's table), then the agent
    metrics over all questions, then each run's F1 difference from the first with a paired
    bootstrap 95% interval; and a bar chart of F1 by level to ``png``."""
    runs = [load_report(d) for d in dirs]
    levels = list(dict.fromkeys(level for r in runs for level in r["levels"]))
    lines = ["| F1 % | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
    for r in runs:
        lines.append(
            f"| {r['label']} | "
            + " | ".join(_cell(r["levels"][lv]["f1"], r["repeats"]) if lv in r["levels"] else "" for lv in levels)
            + " |"
        )
    head = HEADERS
    lines += ["", "| all questions | n | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    for r in runs:
        stats = r["levels"]["all"]
        lines.append(
            f"| {r['label']} | {stats['f1']['n']} | "
            + " | ".join(_cell(stats[m], r["repeats"]) for m in METRICS)
            + " |"
        )
    lines += _paired_lines(dirs, runs)
    if png is not None:
        _bars(Path(png), runs)
    return "\n".join(lines) + "\n"
