"""Face quality: detection score, size, sharpness and pose folded into one score in [0, 1]."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from model.types import Detection, ImageArray

# Faces this many pixels wide (shorter box side) or more get full marks for size.
FULL_SIZE_PX = 112.0
# Variance of the Laplacian of a 112x112 grey chip at which sharpness gets full marks.
FULL_SHARPNESS = 150.0
# Beyond these angles a frontal face embedder degrades quickly.
MAX_YAW_DEG = 60.0
MAX_ROLL_DEG = 45.0


@dataclass(frozen=True, slots=True)
class FaceQuality:
    detection: float
    size_px: float
    sharpness: float  # variance of the Laplacian of the aligned chip
    yaw_deg: float
    roll_deg: float
    score: float  # in [0, 1]: detection x pose x sqrt(size x sharpness)

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def estimate_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll) in degrees from the 5 landmarks: nose offset from the eye midline, eye-line angle."""
    left_eye, right_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    dx, dy = float(right_eye[0] - left_eye[0]), float(right_eye[1] - left_eye[1])
    roll = math.degrees(math.atan2(dy, dx))
    half_eye = math.hypot(dx, dy) / 2.0
    if half_eye < 1e-6:
        return 90.0, roll
    # Nose offset from the eye midpoint along the eye line, in half inter-ocular distances: with
    # the nose tip about that far in front of the eyes, the offset is ~tan(yaw) (0 frontal,
    # 1 = nose under an eye = ~45 degrees).
    mid = (left_eye + right_eye) / 2.0
    offset = ((nose[0] - mid[0]) * dx + (nose[1] - mid[1]) * dy) / (2.0 * half_eye) / half_eye
    yaw = math.degrees(math.atan(float(offset)))
    return yaw, roll


def sharpness(chip: ImageArray) -> float:
    grey = cv2.cvtColor(cv2.resize(chip, (112, 112)), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def assess(detection: Detection, chip: ImageArray) -> FaceQuality:
    yaw, roll = estimate_pose(detection.landmarks)
    sharp = sharpness(chip)
    det = max(0.0, min(1.0, detection.score))
    size = min(1.0, detection.size / FULL_SIZE_PX)
    sharp_score = min(1.0, sharp / FULL_SHARPNESS)
    pose = max(0.0, 1.0 - abs(yaw) / MAX_YAW_DEG) * max(0.0, 1.0 - abs(roll) / MAX_ROLL_DEG)
    # A product, so one useless factor (a smeared or side-on face) sinks the score; size and
    # sharpness trade off against each other (a small sharp face is fine), hence their mean.
    score = det * pose * math.sqrt(size * sharp_score)
    if detection.fallback:
        score = 0.0  # a centre crop is a guess, never a good enrollment face
    return FaceQuality(detection.score, detection.size, sharp, yaw, roll, score)
