"""Training checkpoints: everything a run needs to continue exactly where it stopped, written atomically."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from model.errors import TrainingError

FORMAT = "facereg-train-checkpoint/1"
_EPOCH_FILE = re.compile(r"epoch-(\d{3,})\.pt")


def checkpoint_path(directory: Path, epoch: int) -> Path:
    return directory / f"epoch-{epoch:03d}.pt"


def save_atomic(obj: object, path: Path) -> Path:
    """torch.save to a temporary file, then rename: a process killed mid-write leaves the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def latest(directory: Path) -> Path | None:
    """The checkpoint of the highest completed epoch, or None."""
    found = [(int(m.group(1)), p) for p in directory.glob("epoch-*.pt") if (m := _EPOCH_FILE.fullmatch(p.name))]
    return max(found)[1] if found else None


def load_checkpoint(path: Path, expect: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint whose format and `expect`ed fields (fingerprint, architecture, classes) match this run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never runs code from the file
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise TrainingError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError(f"{path}: not a facereg training checkpoint ({FORMAT})")
    for key, want in expect.items():
        have = state.get(key)
        if have != want:
            raise TrainingError(
                f"cannot resume from {path}: its {key} is {have!r}, this run's is {want!r}; "
                "start a new run (another --run folder) or resume with the settings it was started with"
            )
    return state
