"""Plain records passed between the pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Detection:
    """One face: box (x1, y1, x2, y2), 5 landmarks in ArcFace order, detector score.

    Landmark order: left eye, right eye, nose tip, left mouth corner, right mouth corner, where
    "left" is the viewer's left (the subject's right eye has the smaller x).
    `fallback` marks a centre crop used because no face was detected.
    """

    box: FloatArray
    landmarks: FloatArray
    score: float
    fallback: bool = False

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels: what minimum face sizes compare against."""
        return min(self.width, self.height)

    def scaled(self, factor: float) -> Detection:
        """The same detection in an image resized by `factor`."""
        return Detection(
            box=(self.box * factor).astype(np.float32),
            landmarks=(self.landmarks * factor).astype(np.float32),
            score=self.score,
            fallback=self.fallback,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "score": round(self.score, 4),
            "fallback": self.fallback,
        }
