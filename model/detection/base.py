"""The Detector protocol and the detector-independent steps around it."""

from __future__ import annotations

import math
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
    before detection, so faces in thumbnails and 64 px crops are still found. 160 was chosen on LFW's
    64-px variant (dev pairs, `benchmark.py quality`): as accurate as 224 and 320 for RetinaFace, MTCNN and
    YuNet, and faster; no enlargement costs 0.4-0.9 points.
    `max_pixels`: the detector never sees more pixels than this; larger images (and enlargements that
    would grow past it) are scaled to fit, and boxes and landmarks mapped back. MTCNN's image pyramid
    grows with the area: +100-150 MB at 1 MP, +190-310 MB at 2.1 MP and +350-490 MB at 4.2 MP on LFW
    faces tiled, one torch thread, varying from run to run (`benchmark.py decode`, mtcnn_alone).
    2.1 MP keeps a 1080p frame as it is; the price is recall of small faces in large photos: in a 12 MP
    photo (detected at 1673x1255) a face needs about 48 px to reach the 20 px the detector looks for.
    """

    min_face_size: int = 20
    score_threshold: float = 0.7
    upscale_below: int = 160
    max_pixels: int = 2_100_000


def working_scale(height: int, width: int, options: DetectorOptions) -> float:
    """The factor detection resizes an image by: enlarged up to `upscale_below`, never past `max_pixels`."""
    short = min(height, width)
    wanted = options.upscale_below / short if short < options.upscale_below else 1.0
    return min(wanted, math.sqrt(options.max_pixels / (height * width)))


def detect_faces(detector: Detector, image: ImageArray, options: DetectorOptions) -> list[Detection]:
    """All faces at or above the score threshold, in the coordinates of `image`.

    Faces smaller than `min_face_size` (measured in `image`) are kept here; callers decide whether
    "only small faces" is an error (see `FaceTooSmall`).
    """
    h, w = image.shape[:2]
    factor = working_scale(h, w, options)
    work: ImageArray = image
    if factor != 1.0:
        # Floor, so the size the detector gets is within the budget the factor was computed for.
        size = (max(1, math.floor(w * factor)), max(1, math.floor(h * factor)))
        interpolation = cv2.INTER_CUBIC if factor > 1.0 else cv2.INTER_AREA
        work = np.asarray(cv2.resize(image, size, interpolation=interpolation))
    found = detector.detect(work)
    if factor != 1.0:
        found = [d.scaled(1.0 / factor) for d in found]
    return [d for d in found if d.score >= options.score_threshold]
