"""A run's records: per-step and per-epoch CSV logs and the loss/accuracy curve."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def append_rows(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Append rows to a CSV, writing the header when the file is new."""
    if not rows:
        return
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)


def truncate_after(path: Path, column: str, last: int) -> None:
    """Drop rows whose `column` exceeds `last`: a resumed run rewrites what the stopped run logged after its
    checkpoint."""
    if not path.exists():
        return
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r[column]) <= last]
    path.unlink()
    append_rows(path, rows)


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def plot_curve(steps_csv: Path, epochs_csv: Path, out: Path, title: str) -> Path:
    """Training loss per step (and its epoch mean) with validation accuracy per epoch on a second axis."""
    steps, epochs = read_rows(steps_csv), read_rows(epochs_csv)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if steps:
        ax.plot([int(r["step"]) for r in steps], [float(r["loss"]) for r in steps], lw=0.6, alpha=0.5, label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if epochs:
        acc = ax.twinx()
        for key in ("val_acc", "val_acc_lowres"):
            if key in epochs[0] and epochs[0][key]:
                acc.plot([int(r["step"]) for r in epochs], [float(r[key]) for r in epochs], "o-", label=key)
        acc.set_ylabel("validation accuracy")
        acc.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
