"""Perceptual image hashes: near-equal for resized or re-encoded copies, and mirror-aware."""

from __future__ import annotations

import cv2
import numpy as np

from model.types import ImageArray

HASH_BITS = 64


def phash(image: ImageArray) -> int:
    """64-bit DCT hash (Zauner 2010): signs of the lowest 8x8 frequencies against their median."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def mirror_hashes(image: ImageArray) -> tuple[int, int]:
    """The hash of the image and of its mirror image, so a flipped copy still matches."""
    return phash(image), phash(np.ascontiguousarray(image[:, ::-1]))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def mirror_distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Distance of two images, allowing one to be the mirror image of the other."""
    return min(hamming(a[0], b[0]), hamming(a[0], b[1]))
