"""Training data: a folder of `<person>/<images>`, the identity-disjoint split, aligned chips and pairs.

Photos are aligned with the project's own detector and aligner (the chips the embedders see) and cached,
one `.npy` per image, so a second run (or one that was stopped) aligns nothing twice. A folder of
pre-aligned chips (`aligned=True`) is read as it is, each image checked to be `size` x `size`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from model.alignment import align_face
from model.errors import FaceregError, TrainingError
from model.image_io import IMAGE_SUFFIXES, load_image
from model.pipeline import FaceFinder
from model.types import ImageArray


@dataclass(frozen=True, slots=True)
class Sample:
    path: str  # relative to the dataset root, with "/" separators
    identity: str


def scan_folder(root: Path, min_images: int = 1) -> list[Sample]:
    """Every image of `root/<person>/`, people with fewer than `min_images` images left out."""
    if not root.is_dir():
        raise TrainingError(f"{root}: not a folder; give a folder of <person>/<images>")
    samples: list[Sample] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(
            f for f in person.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        if len(images) >= min_images:
            samples += [Sample(f"{person.name}/{f.name}", person.name) for f in images]
    if not samples:
        raise TrainingError(
            f"{root}: no <person>/<image> files ({', '.join(sorted(IMAGE_SUFFIXES))})"
            + (f" with at least {min_images} images per person" if min_images > 1 else "")
        )
    return samples


def identities_of_pairs(pairs_csv: Path, folds: Iterable[int]) -> set[str]:
    """The people of the given folds of a pairs CSV (`path_a,path_b,...,fold`): a test set never trained on."""
    wanted = set(folds)
    try:
        with pairs_csv.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise TrainingError(f"{pairs_csv}: cannot read the pairs file ({exc})") from exc
    if not rows or not {"path_a", "path_b", "fold"} <= set(rows[0]):
        raise TrainingError(f"{pairs_csv}: needs the columns path_a, path_b and fold")
    try:
        return {Path(r[k]).parent.name for r in rows if int(r["fold"]) in wanted for k in ("path_a", "path_b")}
    except ValueError as exc:
        raise TrainingError(f"{pairs_csv}: a fold that is not a whole number ({exc})") from exc


@dataclass(frozen=True, slots=True)
class Split:
    """Who trains and who validates: no person is in both, and no excluded person in either."""

    train: list[str]
    val: list[str]
    excluded: list[str] = field(default_factory=list)
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))


def split_identities(samples: Sequence[Sample], val_fraction: float, seed: int, exclude: Iterable[str] = ()) -> Split:
    """A seeded identity-disjoint split; validation takes people with >= 2 images (pairs need them)."""
    excluded = set(exclude)
    counts: dict[str, int] = {}
    for s in samples:
        if s.identity not in excluded:
            counts[s.identity] = counts.get(s.identity, 0) + 1
    if len(counts) < 2:
        raise TrainingError(
            f"training needs at least two people; found {len(counts)}"
            + (f" after leaving out {len(excluded)} excluded people" if excluded else "")
        )
    rng = np.random.default_rng(seed)
    pairable = sorted(p for p, n in counts.items() if n >= 2)
    n_val = round(val_fraction * len(counts))
    n_val = min(n_val, max(len(pairable) - 2, 0))  # training keeps at least two people with pairs
    val = sorted(rng.permutation(pairable)[:n_val].tolist()) if n_val else []
    train = sorted(set(counts) - set(val))
    return Split(train=train, val=val, excluded=sorted(excluded & {s.identity for s in samples}), seed=seed)


def verification_pairs(labels: Sequence[int], n_pairs: int, seed: int) -> np.ndarray:
    """Up to `n_pairs` (i, j, same) rows, half of one person and half of two, drawn without repeats."""
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    multi = [v for v in by_label.values() if len(v) >= 2]
    if not multi or len(by_label) < 2:
        raise TrainingError("validation pairs need at least two people, one of them with two images")
    same: set[tuple[int, int]] = set()
    diff: set[tuple[int, int]] = set()
    keys = list(by_label)
    for _ in range(20 * n_pairs):
        if len(same) >= n_pairs // 2 and len(diff) >= n_pairs // 2:
            break
        group = multi[rng.integers(len(multi))]
        a, b = rng.choice(len(group), 2, replace=False)
        same.add((min(group[a], group[b]), max(group[a], group[b])))
        la, lb = rng.choice(len(keys), 2, replace=False)
        x, y = by_label[keys[la]], by_label[keys[lb]]
        diff.add((x[rng.integers(len(x))], y[rng.integers(len(y))]))
    rows = [(a, b, 1) for a, b in sorted(same)[: n_pairs // 2]] + [(a, b, 0) for a, b in sorted(diff)[: n_pairs // 2]]
    return np.asarray(rows, dtype=np.int64)


@dataclass(slots=True)
class Chips:
    """Aligned chips (N, size, size, 3 uint8) of the samples that could be read; failures by path."""

    images: np.ndarray
    samples: list[Sample]
    failures: dict[str, str]


class ChipCache:
    """Aligned 112x112 (or `size`) chips of dataset images, cached one file per image under `directory`.

    The cache key holds the detector, its options and the chip size, and each entry the image's size and
    modification time: a changed photo or another detector never reads a stale chip."""

    def __init__(self, directory: Path, finder: FaceFinder | None, size: int = 112) -> None:
        self.finder = finder
        self.size = size
        opts = json.dumps(asdict(finder.options.detector), sort_keys=True, default=str) if finder else "aligned"
        name = finder.detector.name if finder else "aligned"
        key = hashlib.sha256(f"{name}|{opts}|{size}".encode()).hexdigest()[:12]
        self.directory = directory / f"{name}-{size}-{key}"

    def load(self, root: Path, samples: Sequence[Sample], desc: str = "aligning") -> Chips:
        """The chip of each sample, aligned now or read from the cache; unreadable ones in `failures`."""
        images: list[ImageArray] = []
        kept: list[Sample] = []
        failures: dict[str, str] = {}
        for sample in tqdm(samples, desc=desc, unit="img", mininterval=2.0):
            try:
                images.append(self._chip(root, sample))
                kept.append(sample)
            except FaceregError as exc:
                failures[sample.path] = f"{exc.code}: {exc}"
        stacked = np.stack(images) if images else np.zeros((0, self.size, self.size, 3), np.uint8)
        return Chips(stacked, kept, failures)

    def _chip(self, root: Path, sample: Sample) -> ImageArray:
        source = root / sample.path
        try:
            stat = source.stat()
        except OSError as exc:
            raise TrainingError(f"cannot read {sample.path} ({exc.strerror})") from exc
        digest = hashlib.sha256(f"{sample.path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        entry = self.directory / digest[:2] / f"{digest}.npy"
        if entry.is_file():
            chip: ImageArray = np.load(entry)
            return chip
        chip = self._align(source)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.save(fh, chip)
        tmp.replace(entry)
        return chip

    def _align(self, source: Path) -> ImageArray:
        if self.finder is None:
            image = load_image(source)
            if image.shape[:2] != (self.size, self.size):
                raise TrainingError(
                    f"{source.name} is {image.shape[1]}x{image.shape[0]}, not a {self.size}x{self.size} aligned chip"
                )
            return image
        image = self.finder.load(source)
        return align_face(image, self.finder.primary(image).landmarks, self.size)
