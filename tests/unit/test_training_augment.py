"""model/training/augment.py: every function keeps the chip's shape and dtype, each does what its name says,
and the configs are deterministic given a seed and refuse bad settings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from model.errors import TrainingError
from model.quality import sharpness
from model.training.augment import (
    AugmentConfig,
    DegradeConfig,
    colour_jitter,
    downscale,
    gaussian_blur,
    hflip,
    jpeg,
    random_crop,
    to_tensor,
)

torch.set_num_threads(1)


def noise(height: int = 112, width: int = 112, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def checkerboard(side: int = 112) -> np.ndarray:
    """1-px black and white squares."""
    board = (np.indices((side, side)).sum(axis=0) % 2 * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def smooth_colour(side: int = 112) -> np.ndarray:
    """A reddish chip: red 200, green a horizontal ramp 0..222, blue 30."""
    chip = np.empty((side, side, 3), np.uint8)
    chip[..., 0], chip[..., 1], chip[..., 2] = 200, np.arange(side, dtype=np.uint8)[None, :] * 2, 30
    return chip


FUNCTIONS: list[Callable[[np.ndarray], np.ndarray]] = [
    hflip,
    lambda c: random_crop(c, np.random.default_rng(1), min_scale=0.8),
    lambda c: colour_jitter(c, np.random.default_rng(1)),
    lambda c: downscale(c, 20),
    lambda c: gaussian_blur(c, 1.0),
    lambda c: jpeg(c, 50),
    lambda c: AugmentConfig(flip=1, crop=1, jitter=1, lowres=1).apply(c, np.random.default_rng(1)),
    lambda c: DegradeConfig(p=1, blur=1, jpeg=1).apply(c, np.random.default_rng(1)),
]


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_shape_and_dtype_are_kept_and_the_input_is_not_touched(fn: Callable[[np.ndarray], np.ndarray]) -> None:
    chip = noise(112, 96)  # not square: no size is hard-coded
    before = chip.copy()
    out = fn(chip)
    assert out.shape == (112, 96, 3) and out.dtype == np.uint8
    assert out is not chip and np.array_equal(chip, before)


def test_hflip_reverses_the_columns_and_twice_is_the_identity() -> None:
    chip = noise()
    assert np.array_equal(hflip(chip)[:, 0], chip[:, -1])
    assert np.array_equal(hflip(chip)[5, 10], chip[5, 101])
    assert np.array_equal(hflip(hflip(chip)), chip)


def test_a_full_size_unshifted_crop_is_the_identity() -> None:
    chip = noise()
    assert np.array_equal(random_crop(chip, np.random.default_rng(0), max_shift=0, min_scale=1.0), chip)


def test_downscale_averages_a_checkerboard_away_and_keeps_it_at_full_size() -> None:
    board = checkerboard()
    # 112 -> 16 area-averages 7x7 blocks: 24 or 25 white pixels of 49, so 124.9 or 130.1, linearly interpolated.
    low = downscale(board, 16)
    assert low.min() >= 124 and low.max() <= 131
    assert np.array_equal(downscale(board, 112), board)


def test_jpeg_at_low_quality_changes_the_chip_but_keeps_it_close_and_in_rgb() -> None:
    chip = smooth_colour()
    out = jpeg(chip, 10)
    assert not np.array_equal(out, chip)
    assert np.abs(out.astype(float) - chip).mean() < 8
    # Channel means stay put: a red/blue swap would move red to about 30 and blue to about 200.
    assert np.allclose(out.reshape(-1, 3).mean(axis=0), chip.reshape(-1, 3).mean(axis=0), atol=6)


def test_blur_lowers_the_laplacian_variance() -> None:
    chip = noise()
    assert sharpness(gaussian_blur(chip, 1.5)) < 0.1 * sharpness(chip)


def test_colour_jitter_of_zero_strength_is_the_identity_and_keeps_grey_grey() -> None:
    chip, rng = noise(), np.random.default_rng(0)
    assert np.array_equal(colour_jitter(chip, rng, 0.0, 0.0, 0.0), chip)
    # Contrast pivots on the mean grey, saturation on each pixel's grey: a uniform grey chip only brightens.
    grey = np.full((8, 8, 3), 100, np.uint8)
    assert np.array_equal(colour_jitter(grey, rng, brightness=0.0, contrast=0.5, saturation=0.5), grey)
    brighter = colour_jitter(grey, rng, brightness=0.5, contrast=0.0, saturation=0.0)
    assert len(np.unique(brighter)) == 1 and 50 <= brighter[0, 0, 0] <= 150


def test_the_same_seed_gives_the_same_chip() -> None:
    chip, augment, degrade = noise(), AugmentConfig(crop=1, jitter=1, lowres=0.5), DegradeConfig(blur=0.5, jpeg=0.5)
    for config in (augment, degrade):
        first = [config.apply(chip, np.random.default_rng(seed)) for seed in range(5)]
        again = [config.apply(chip, np.random.default_rng(seed)) for seed in range(5)]
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
        assert not all(np.array_equal(first[0], other) for other in first[1:])


def test_degrade_with_p_zero_returns_the_chip_unchanged_and_with_p_one_always_downscales() -> None:
    chip = noise()
    assert np.array_equal(DegradeConfig(p=0.0).apply(chip, np.random.default_rng(0)), chip)
    only_downscale = DegradeConfig(p=1.0, sizes=(16, 16), blur=0.0, jpeg=0.0)
    assert np.array_equal(only_downscale.apply(chip, np.random.default_rng(0)), downscale(chip, 16))


@pytest.mark.parametrize(
    "make",
    [
        lambda: AugmentConfig(flip=1.5),
        lambda: AugmentConfig(lowres=-0.1),
        lambda: AugmentConfig(lowres_sizes=(64, 24)),
        lambda: AugmentConfig(lowres_sizes=(3, 24)),
        lambda: DegradeConfig(p=2.0),
        lambda: DegradeConfig(sizes=(2, 8)),
        lambda: DegradeConfig(sigma=(0.0, 1.0)),
        lambda: DegradeConfig(sigma=(1.5, 0.5)),
        lambda: DegradeConfig(quality=(30, 101)),
        lambda: DegradeConfig(quality=(0, 50)),
        lambda: jpeg(noise(), 0),
        lambda: downscale(noise(), 0),
        lambda: gaussian_blur(noise(), 0.0),
        lambda: colour_jitter(noise(), np.random.default_rng(0), brightness=1.5),
        lambda: random_crop(noise(), np.random.default_rng(0), min_scale=0.0),
        lambda: to_tensor([], (0.5,) * 3, (0.5,) * 3),
    ],
)
def test_bad_settings_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(TrainingError):
        make()


def test_to_tensor_lays_out_nchw_and_normalises_per_channel() -> None:
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0] = 255
    chips = [red, np.full((4, 6, 3), 51, np.uint8)]
    batch = to_tensor(chips, mean=(0.5, 0.5, 0.2), std=(0.5, 0.25, 0.1))
    assert torch.equal(to_tensor(np.stack(chips), mean=(0.5, 0.5, 0.2), std=(0.5, 0.25, 0.1)), batch)
    assert batch.shape == (2, 3, 4, 6) and batch.dtype == torch.float32
    # (255/255 - 0.5)/0.5 = 1, (0 - 0.5)/0.25 = -2, (0 - 0.2)/0.1 = -2; 51/255 = 0.2: 0.2-0.5 / 0.5 = -0.6, ...
    assert torch.allclose(batch[0, :, 0, 0], torch.tensor([1.0, -2.0, -2.0]))
    assert torch.allclose(batch[1, :, 3, 5], torch.tensor([-0.6, -1.2, 0.0]), atol=1e-6)
