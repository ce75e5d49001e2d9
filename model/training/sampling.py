"""Class-balanced batches for metric-style training: P classes x K images of each."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from model.errors import TrainingError


class ClassBalancedSampler(Sampler[list[int]]):
    """A batch sampler: each batch holds `classes_per_batch` distinct classes with `images_per_class` dataset
    indices each. An epoch walks a permutation of the classes, so every class appears once per epoch (a last
    incomplete batch is dropped, or filled with other classes drawn at random). A class with fewer images than
    `images_per_class` repeats them, each at least once. The permutation depends only on (seed, epoch): call
    `set_epoch` before each epoch, and a run resumed at an epoch sees the same batches."""

    def __init__(
        self,
        labels: Sequence[int],
        classes_per_batch: int,
        images_per_class: int,
        seed: int,
        drop_incomplete: bool = False,
    ) -> None:
        super().__init__()
        if classes_per_batch < 1 or images_per_class < 1 or seed < 0:
            raise TrainingError(
                "classes_per_batch and images_per_class must be at least 1 and seed at least 0, "
                f"got {classes_per_batch}, {images_per_class}, {seed}"
            )
        self.groups = _indices_by_class(labels)
        if len(self.groups) < classes_per_batch:
            raise TrainingError(
                f"the labels hold {len(self.groups)} classes, fewer than classes_per_batch={classes_per_batch}"
            )
        self.classes_per_batch = classes_per_batch
        self.images_per_class = images_per_class
        self.seed = seed
        self.drop_incomplete = drop_incomplete
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        whole, rest = divmod(len(self.groups), self.classes_per_batch)
        return whole + int(rest > 0 and not self.drop_incomplete)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.groups))
        for start in range(0, len(self) * self.classes_per_batch, self.classes_per_batch):
            chosen = order[start : start + self.classes_per_batch]
            missing = self.classes_per_batch - len(chosen)
            if missing:
                others = np.setdiff1d(order, chosen)
                chosen = np.concatenate([chosen, rng.choice(others, missing, replace=False)])
            yield [i for c in chosen for i in self._draw(self.groups[c], rng)]

    def _draw(self, group: npt.NDArray[np.intp], rng: np.random.Generator) -> list[int]:
        """`images_per_class` indices of one class: np.resize repeats a permutation of a small class cyclically
        and takes a random subset of a large one."""
        return [int(i) for i in np.resize(rng.permutation(group), self.images_per_class)]


def _indices_by_class(labels: Sequence[int]) -> list[npt.NDArray[np.intp]]:
    """The dataset indices of each class, classes in sorted label order."""
    _, inverse, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    by_class = np.argsort(inverse, kind="stable")
    return np.split(by_class, np.cumsum(counts)[:-1]) if len(counts) else []
