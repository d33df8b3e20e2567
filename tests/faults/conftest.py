"""The fault suite's ledger: every test adds what it tried, and the run ends with the totals
(faults tried, runs completed, records lost, runs that claimed success after a failure, worst
seconds per call) that docs/reliability.md quotes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest


class Ledger:
    """Counts per boundary: faults tried, runs completed, records lost, false successes (a run
    that exited 0 after a failure it met), crashes (a process or server that died of a fault it
    should have refused), the slowest call."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = defaultdict(
            lambda: {"faults": 0, "runs": 0, "completed": 0, "lost": 0, "false_ok": 0, "crashes": 0, "worst_s": 0.0}
        )

    def add(
        self,
        boundary: str,
        *,
        faults: int = 0,
        runs: int = 0,
        completed: int = 0,
        lost: int = 0,
        false_ok: int = 0,
        crashes: int = 0,
        seconds: float = 0.0,
    ) -> None:
        row = self.rows[boundary]
        row["faults"] += faults
        row["runs"] += runs
        row["completed"] += completed
        row["lost"] += lost
        row["false_ok"] += false_ok
        row["crashes"] += crashes
        row["worst_s"] = max(row["worst_s"], seconds)


LEDGER = Ledger()


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not LEDGER.rows:
        return
    write = terminalreporter.write_line
    write("")
    write("fault ledger (tests/faults):")
    write(
        f"  {'boundary':<26} {'faults':>7} {'runs':>6} {'completed':>10} {'lost':>5} {'false ok':>9} "
        f"{'crashes':>8} {'worst s/call':>13}"
    )
    total = {"faults": 0, "runs": 0, "completed": 0, "lost": 0, "false_ok": 0, "crashes": 0, "worst_s": 0.0}
    for name, row in sorted(LEDGER.rows.items()):
        worst = f"{row['worst_s']:.2f}" if row["worst_s"] else "-"
        write(
            f"  {name:<26} {int(row['faults']):>7} {int(row['runs']):>6} {int(row['completed']):>10} "
            f"{int(row['lost']):>5} {int(row['false_ok']):>9} {int(row['crashes']):>8} {worst:>13}"
        )
        for key in ("faults", "runs", "completed", "lost", "false_ok", "crashes"):
            total[key] += row[key]
        total["worst_s"] = max(total["worst_s"], row["worst_s"])
    worst = f"{total['worst_s']:.2f}" if total["worst_s"] else "-"
    write(
        f"  {'all':<26} {int(total['faults']):>7} {int(total['runs']):>6} {int(total['completed']):>10} "
        f"{int(total['lost']):>5} {int(total['false_ok']):>9} {int(total['crashes']):>8} {worst:>13}"
    )
