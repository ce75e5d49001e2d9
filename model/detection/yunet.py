"""YuNet through OpenCV's FaceDetectorYN: a few milliseconds per frame on CPU."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from model.errors import ModelUnavailable
from model.types import Detection, ImageArray


class YuNetDetector:
    """YuNet (Wu, Peng, Yu, 2023) from an ONNX weights file."""

    name = "yunet"

    def __init__(self, weights: Path, score_threshold: float = 0.6, nms_threshold: float = 0.3) -> None:
        if not weights.is_file():
            raise ModelUnavailable(f"YuNet weights not found at {weights}")
        if not hasattr(cv2, "FaceDetectorYN"):  # pragma: no cover - depends on the OpenCV build
            raise ModelUnavailable("this OpenCV build has no FaceDetectorYN; install opencv-python-headless")
        self._net = cv2.FaceDetectorYN.create(str(weights), "", (320, 320), score_threshold, nms_threshold, 5000)

    def detect(self, image: ImageArray) -> list[Detection]:
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, faces = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        out = []
        for row in np.asarray(faces, dtype=np.float32):
            x, y, bw, bh = row[:4]
            # YuNet's landmark order (right eye, left eye, nose, right and left mouth corner, as
            # the subject sees them) is the viewer's left-to-right order of the ArcFace template.
            out.append(
                Detection(
                    box=np.array([x, y, x + bw, y + bh], dtype=np.float32),
                    landmarks=row[4:14].reshape(5, 2).copy(),
                    score=float(row[14]),
                )
            )
        return out
