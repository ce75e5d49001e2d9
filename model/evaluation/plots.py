"""ROC and Top-K (CMC) plots as PNG files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from model.evaluation.metrics import Roc


def plot_roc(roc: Roc, path: Path, title: str, auc: float | None = None) -> Path:
    fig = roc_figure(roc, title, auc)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def roc_figure(roc: Roc, title: str, auc: float | None = None) -> Figure:
    """TAR against FAR on a log axis (the caller closes the figure)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    far = roc.far.clip(min=1e-5)
    label = f"AUC {auc:.4f}" if auc is not None else None
    ax.plot(far, roc.tar, lw=2, label=label)
    ax.set_xscale("log")
    ax.set_xlim(1e-4 if roc.far[roc.far > 0].min(initial=1) < 1e-3 else 1e-3, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if label:
        ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_topk(topk: Mapping[int, float], path: Path, title: str) -> Path:
    ks = sorted(topk)
    fig, ax = plt.subplots(figsize=(5.0, 4.0), dpi=110)
    bars = ax.bar([f"Top-{k}" for k in ks], [topk[k] for k in ks], color="#3b7dd8")
    for bar, k in zip(bars, ks, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, topk[k], f"{topk[k]:.3f}", ha="center", va="bottom")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("identification rate")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
