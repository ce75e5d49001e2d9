"""The Detector protocol and the detector-independent steps around it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from model.types import Detection, ImageArray


class Detector(Protocol):
    """Finds faces in an RGB uint8 image: boxes, 5 landmarks (ArcFace order) and scores."""

    name: str

    def detect(self, image: ImageArray) -> list[Detection]: ...


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """Detector-independent settings.

    `upscale_below`: images whose shorter side is under this many pixels are enlarged to it
    before detection, so faces in thumbnails and 64 px crops are still found.
    """

    min_face_size: int = 20
    score_threshold: float = 0.7
    upscale_below: int = 224


def detect_faces(detector: Detector, image: ImageArray, options: DetectorOptions) -> list[Detection]:
    """All faces at or above the score threshold, in the coordinates of `image`.

    Faces smaller than `min_face_size` (measured in the original image) are kept here; callers
    decide whether "only small faces" is an error (see `FaceTooSmall`).
    """
    short = min(image.shape[:2])
    factor = options.upscale_below / short if short < options.upscale_below else 1.0
    work: ImageArray = image
    if factor > 1.0:
        h, w = image.shape[:2]
        work = np.asarray(cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_CUBIC))
    found = detector.detect(work)
    if factor > 1.0:
        found = [d.scaled(1.0 / factor) for d in found]
    return [d for d in found if d.score >= options.score_threshold]
