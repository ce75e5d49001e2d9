"""model/training/sampling.py: P distinct classes x K images per batch, every class once per epoch, the same
batches for the same (seed, epoch)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from model.errors import TrainingError
from model.training.sampling import ClassBalancedSampler

torch.set_num_threads(1)

# 10 classes labelled 100, 110, ..., 190; class number c holds c + 1 images, shuffled through the dataset.
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(100, 200, 10), np.arange(1, 11))).tolist()


def batch_classes(batch: list[int]) -> Counter[int]:
    return Counter(LABELS[i] for i in batch)


@pytest.mark.parametrize(("drop", "batches"), [(False, 4), (True, 3)])
def test_each_batch_holds_p_distinct_classes_of_k_images(drop: bool, batches: int) -> None:
    sampler = ClassBalancedSampler(LABELS, classes_per_batch=3, images_per_class=4, seed=7, drop_incomplete=drop)
    epoch = list(sampler)
    assert len(sampler) == len(epoch) == batches  # 10 classes in 3s: 3 whole batches, a 4th topped up
    for batch in epoch:
        assert sorted(batch_classes(batch).values()) == [4, 4, 4]
        for label in batch_classes(batch):
            indices = [i for i in batch if LABELS[i] == label]
            size = LABELS.count(label)
            # Small classes repeat every image (1 image x4, 2 images x2 each, 3 images: one twice).
            assert len(set(indices)) == min(size, 4)


def test_every_class_appears_within_an_epoch() -> None:
    sampler = ClassBalancedSampler(LABELS, classes_per_batch=3, images_per_class=2, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        seen = Counter(label for batch in sampler for label in batch_classes(batch))
        assert set(seen) == set(LABELS)
        assert sum(seen.values()) == 4 * 3  # 9 classes once, the 10th and two fillers in the last batch
    dropped = ClassBalancedSampler(LABELS, classes_per_batch=5, images_per_class=2, seed=1, drop_incomplete=True)
    assert {label for batch in dropped for label in batch_classes(batch)} == set(LABELS)  # 10 = 2 x 5: none left


def test_set_epoch_reproduces_an_epoch_and_epochs_differ() -> None:
    first = ClassBalancedSampler(LABELS, 3, 4, seed=5)
    first.set_epoch(2)
    resumed = ClassBalancedSampler(LABELS, 3, 4, seed=5)
    resumed.set_epoch(2)
    assert list(first) == list(resumed) == list(first)
    resumed.set_epoch(3)
    assert list(resumed) != list(first)
    assert list(ClassBalancedSampler(LABELS, 3, 4, seed=6)) != list(ClassBalancedSampler(LABELS, 3, 4, seed=5))


def test_it_drives_a_dataloader() -> None:
    dataset = TensorDataset(torch.tensor(LABELS))
    loader = DataLoader(dataset, batch_sampler=ClassBalancedSampler(LABELS, 2, 3, seed=0))
    sizes = [len(batch[0]) for batch in loader]
    assert sizes == [6] * 5


@pytest.mark.parametrize(
    "args",
    [
        ([1, 1, 2, 2], 3, 2, 0),  # 2 classes, 3 per batch
        ([], 1, 1, 0),
        (LABELS, 0, 2, 0),
        (LABELS, 2, 0, 0),
        (LABELS, 2, 2, -1),
    ],
)
def test_bad_settings_are_refused(args: tuple[list[int], int, int, int]) -> None:
    with pytest.raises(TrainingError):
        ClassBalancedSampler(*args)
