"""Augmentation and degradation of aligned face chips (HxWx3 uint8 RGB) for training.

Every function is pure: it returns a new uint8 array of the chip's shape, and draws its randomness from the
`np.random.Generator` it is given, so the same seed gives the same chip."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from model.embedders.base import normalise_chips
from model.errors import TrainingError
from model.image_io import encode_image
from model.types import ImageArray

# ITU-R BT.601 luma weights of R, G, B: the grey that contrast and saturation pivot on.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def hflip(chip: ImageArray) -> ImageArray:
    """The mirror image: columns in reverse order."""
    return np.ascontiguousarray(chip[:, ::-1])


def _resize(chip: ImageArray, width: int, height: int, interpolation: int) -> ImageArray:
    return np.asarray(cv2.resize(chip, (width, height), interpolation=interpolation), dtype=np.uint8)


def random_crop(chip: ImageArray, rng: np.random.Generator, max_shift: int = 6, min_scale: float = 0.9) -> ImageArray:
    """A crop of scale x the chip's sides (scale uniform in [min_scale, 1]), centred then shifted by up to
    `max_shift` px each way (kept inside the chip), resized back to the chip's size."""
    if max_shift < 0 or not 0.0 < min_scale <= 1.0:
        raise TrainingError(f"random_crop needs max_shift >= 0 and min_scale in (0, 1], got {max_shift}, {min_scale}")
    height, width = chip.shape[:2]
    scale = rng.uniform(min_scale, 1.0)
    ch, cw = max(1, round(height * scale)), max(1, round(width * scale))
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
    y0 = int(np.clip((height - ch) // 2 + dy, 0, height - ch))
    x0 = int(np.clip((width - cw) // 2 + dx, 0, width - cw))
    return _resize(chip[y0 : y0 + ch, x0 : x0 + cw], width, height, cv2.INTER_LINEAR)


def colour_jitter(
    chip: ImageArray,
    rng: np.random.Generator,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
) -> ImageArray:
    """Brightness, contrast and saturation scaled, in that order, by factors uniform in [1 - x, 1 + x]."""
    for name, x in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        _check_probability(name, x)
    b, c, s = (rng.uniform(1.0 - x, 1.0 + x) for x in (brightness, contrast, saturation))
    out = chip.astype(np.float32) * b
    grey = out @ _LUMA
    out = (out - grey.mean()) * c + grey.mean()  # contrast pivots on the mean grey level
    grey = out @ _LUMA
    out = (out - grey[..., None]) * s + grey[..., None]  # saturation pivots on each pixel's grey
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def downscale(chip: ImageArray, size: int) -> ImageArray:
    """A low-resolution face: area-averaged down to size x size, then linearly back up to the chip's size."""
    if size < 1:
        raise TrainingError(f"downscale needs a size of at least 1 px, got {size}")
    height, width = chip.shape[:2]
    return _resize(_resize(chip, size, size, cv2.INTER_AREA), width, height, cv2.INTER_LINEAR)


def gaussian_blur(chip: ImageArray, sigma: float) -> ImageArray:
    """A Gaussian blur of standard deviation `sigma` px (kernel size chosen by OpenCV from sigma)."""
    if sigma <= 0:
        raise TrainingError(f"gaussian_blur needs sigma > 0, got {sigma}")
    return np.asarray(cv2.GaussianBlur(chip, (0, 0), sigmaX=sigma), dtype=np.uint8)


def jpeg(chip: ImageArray, quality: int) -> ImageArray:
    """The chip after a JPEG round trip at `quality` (1-100): block and ringing artefacts."""
    if not 1 <= quality <= 100:
        raise TrainingError(f"jpeg quality must be in [1, 100], got {quality}")
    data = np.frombuffer(encode_image(chip, ".jpg", quality), dtype=np.uint8)
    bgr = np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), dtype=np.uint8)
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise TrainingError(f"{name} must be in [0, 1], got {value}")


def _check_range(name: str, bounds: tuple[float, float], minimum: float, maximum: float = math.inf) -> None:
    low, high = bounds
    if not minimum <= low <= high <= maximum:
        raise TrainingError(f"{name} must be (low, high) with {minimum} <= low <= high <= {maximum}, got {bounds}")


def _uniform_int(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An integer uniform in [low, high], both included."""
    return int(rng.integers(bounds[0], bounds[1] + 1))


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    """The training augmentation: each step applied with its probability, in this order."""

    flip: float = 0.5
    crop: float = 0.0
    jitter: float = 0.0
    lowres: float = 0.0
    lowres_sizes: tuple[int, int] = (24, 64)  # the down-scaled side, drawn uniformly, both included

    def __post_init__(self) -> None:
        for name in ("flip", "crop", "jitter", "lowres"):
            _check_probability(name, getattr(self, name))
        _check_range("lowres_sizes", self.lowres_sizes, 4)

    def apply(self, chip: ImageArray, rng: np.random.Generator) -> ImageArray:
        out = chip.copy()
        if rng.random() < self.flip:
            out = hflip(out)
        if rng.random() < self.crop:
            out = random_crop(out, rng)
        if rng.random() < self.jitter:
            out = colour_jitter(out, rng)
        if rng.random() < self.lowres:
            out = downscale(out, _uniform_int(rng, self.lowres_sizes))
        return out


@dataclass(frozen=True, slots=True)
class DegradeConfig:
    """The degradation of identity-free distillation: the student sees the degraded chip, the teacher the clean
    one. With probability `p` a chip is degraded: blurred (probability `blur`), always down-scaled, then JPEG
    compressed (probability `jpeg`); otherwise it is returned unchanged."""

    p: float = 0.8
    sizes: tuple[int, int] = (24, 64)
    blur: float = 0.3
    sigma: tuple[float, float] = (0.5, 1.5)
    jpeg: float = 0.3
    quality: tuple[int, int] = (30, 90)

    def __post_init__(self) -> None:
        for name in ("p", "blur", "jpeg"):
            _check_probability(name, getattr(self, name))
        _check_range("sizes", self.sizes, 4)
        _check_range("sigma", self.sigma, 0.1)  # below 0.1 px a Gaussian blur changes nothing
        _check_range("quality", self.quality, 1, 100)

    def apply(self, chip: ImageArray, rng: np.random.Generator) -> ImageArray:
        if rng.random() >= self.p:
            return chip.copy()
        out = chip
        if rng.random() < self.blur:
            out = gaussian_blur(out, rng.uniform(*self.sigma))
        out = downscale(out, _uniform_int(rng, self.sizes))
        if rng.random() < self.jpeg:
            out = jpeg(out, _uniform_int(rng, self.quality))  # the module's function: fields are not in scope
        return out


def to_tensor(chips: Sequence[ImageArray] | ImageArray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """HxWx3 uint8 RGB chips (or an N x H x W x 3 batch) -> an (N, 3, H, W) float32 tensor, normalised per channel
    as (x / 255 - mean) / std."""
    if len(chips) == 0:
        raise TrainingError("to_tensor needs at least one chip")
    return torch.from_numpy(normalise_chips(np.asarray(chips, dtype=np.uint8), mean, std))
