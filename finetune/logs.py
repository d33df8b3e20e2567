"""The loss curve of a run: a JSONL log beside the adapter, and a PNG plot of it.

``LossLog`` appends every logged step (loss, learning rate; for DPO the chosen and rejected
log-probs, reward margins and accuracies) to ``OUTPUT_DIR/log.jsonl``; a resumed run appends
too, and the plot keeps the last entry of each step. ``plot_log`` draws ``loss.png``. Lines are
appended whole and fsynced (``araft_lc.storage.jsonl_sink``): a full disk stops the run with a
``WriteError`` and leaves no torn line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from araft_lc.storage.atomic_file import replace_atomically
from araft_lc.storage.jsonl import read_jsonl
from araft_lc.storage.jsonl_sink import JsonlSink

__all__ = ["LossLog", "append_log", "read_log", "plot_log"]

LOG_NAME, PLOT_NAME = "log.jsonl", "loss.png"
# panels of the plot: (title, keys), drawn when the log has them
PANELS = (
    ("loss", ("loss",)),
    ("DPO reward margin", ("rewards/margins",)),
    ("DPO reward accuracy", ("rewards/accuracies",)),
    ("log-prob of chosen / rejected", ("logps/chosen", "logps/rejected")),
    ("held-out parse-error share", ("format/parse_error_share",)),
)


def append_log(output_dir: str, entry: dict[str, Any]) -> None:
    """Append ``entry`` (secrets redacted) to ``log.jsonl``; WriteError when the disk refuses it."""
    with JsonlSink(Path(output_dir) / LOG_NAME) as sink:
        sink.write(entry)


def read_log(output_dir: str) -> list[dict[str, Any]]:
    """The logged entries, the last one of each (step, kind) kept, in step order."""
    path = Path(output_dir) / LOG_NAME
    if not path.is_file():
        return []
    latest: dict[tuple[int, tuple[str, ...]], dict[str, Any]] = {}
    entry: dict[str, Any]
    for _, entry in read_jsonl(path, what="a log entry", fix=f"remove the line (or {LOG_NAME}) and plot again"):
        latest[(entry.get("step", 0), tuple(sorted(entry)))] = entry
    return [latest[k] for k in sorted(latest)]


class LossLog(TrainerCallback):
    """Appends each of the trainer's log entries to ``log.jsonl``."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and logs:
            append_log(self.output_dir, {"step": state.global_step, "epoch": state.epoch, **logs})


def plot_log(output_dir: str) -> Path | None:
    """Draw ``loss.png`` from ``log.jsonl``; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = read_log(output_dir)
    panels = [(title, keys) for title, keys in PANELS if any(k in e for e in entries for k in keys)]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), squeeze=False)
    for ax, (title, keys) in zip(axes[:, 0], panels, strict=True):
        for key in keys:
            points = [(e["step"], e[key]) for e in entries if key in e]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=key)
        ax.set_title(title)
        ax.set_xlabel("optimiser step")
        if len(keys) > 1:
            ax.legend()
    fig.tight_layout()
    out = Path(output_dir) / PLOT_NAME
    replace_atomically(out, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return out
