"""argparse types that refuse bad values with one clear line (argparse then exits 2): finite numbers in a
range, counts, existing folders and files."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from services.storage.input_paths import printable


def bounded_float(lo: float, hi: float) -> Callable[[str], float]:
    """A finite number in [lo, hi] (NaN and infinities are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number from {lo:g} to {hi:g}")
        return value

    return parse


def bounded_int(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """A whole number of at least `lo` (and at most `hi`)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{value} must be {bound}")
        return value

    return parse


SIMILARITY = bounded_float(-1.0, 1.0)  # a cosine threshold
FRACTION = bounded_float(0.0, 1.0)  # a quality bar, a detection score
TOP_K = bounded_int(1, 100)
COUNT = bounded_int(0)  # 0 usually means "all"
POSITIVE = bounded_int(1)


def _existing(is_kind: Callable[[Path], bool], otherwise: str) -> Callable[[str], Path]:
    def parse(text: str) -> Path:
        path = Path(text)
        if not is_kind(path):
            raise argparse.ArgumentTypeError(f"{printable(text)} {otherwise if path.exists() else 'does not exist'}")
        return path

    return parse


existing_dir = _existing(Path.is_dir, "is a file, not a folder")
existing_file = _existing(Path.is_file, "is not a regular file")


def fold_list(text: str) -> int | list[int]:
    """`K` (the first K folds), `A-B` (folds A to B) or `A,B,C` (those folds)."""
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-", 1))
            return list(range(lo, hi + 1))
        if "," in text:
            return [int(v) for v in text.split(",") if v]
        return POSITIVE(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fold count (5) or a fold list (5-9, 5,6,7)") from None


def positive_list(text: str) -> list[int]:
    """Comma-separated whole numbers, each at least 1 (`100000,1000000`)."""
    values = [POSITIVE(v.strip()) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} names no number")
    return values
