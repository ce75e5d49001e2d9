"""MTCNN from facenet-pytorch; its weights ship inside the wheel, so it needs no download."""

from __future__ import annotations

import numpy as np

from model.errors import ModelUnavailable
from model.types import Detection, ImageArray


class MTCNNDetector:
    """Three-stage cascade (Zhang et al., 2016). About 60 ms for a 250x250 image on one CPU core."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", min_face_size: int = 20) -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable(
                "facenet-pytorch is not installed; run scripts/bootstrap.sh or choose FACEREG_DETECTOR=yunet"
            ) from exc
        # The cascade's own minimum is kept low: size limits are applied by the caller in the
        # original image's pixels, after the upscaling of small images.
        self._mtcnn = MTCNN(keep_all=True, device=device, min_face_size=min(min_face_size, 20), post_process=False)

    def detect(self, image: ImageArray) -> list[Detection]:
        boxes, probs, points = self._mtcnn.detect(image, landmarks=True)
        if boxes is None:
            return []
        # With keep_all=True facenet-pytorch returns object-dtype arrays under numpy 2.
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2)
        return [Detection(box=b, landmarks=p, score=float(s)) for b, p, s in zip(boxes, points, probs, strict=True)]
