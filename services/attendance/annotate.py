"""Drawing a camera frame for people: face boxes, names, similarity and the frame rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from model.image_io import encode_image
from model.types import FloatArray, ImageArray

KNOWN = (40, 200, 60)  # RGB
UNKNOWN = (220, 50, 50)
UNDECIDED = (240, 200, 40)
JPEG_QUALITY = 75


@dataclass(frozen=True, slots=True)
class FaceLabel:
    box: FloatArray
    text: str  # "Ada Lovelace 0.62", "unknown", "…"
    state: str  # "known" | "unknown" | "undecided"


def annotate(frame: ImageArray, faces: Sequence[FaceLabel], fps: float, camera: str) -> ImageArray:
    """A copy of the RGB frame with each face's box and label and a status line."""
    out = np.ascontiguousarray(frame.copy())
    for face in faces:
        colour = KNOWN if face.state == "known" else UNKNOWN if face.state == "unknown" else UNDECIDED
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        _label(out, face.text, (x1, max(14, y1 - 4)), colour)
    _label(out, f"{camera}  {fps:.1f} FPS  {len(faces)} face(s)", (6, 18), (255, 255, 255))
    return out


def to_jpeg(image: ImageArray, max_width: int = 960) -> bytes:
    """The RGB image as JPEG bytes, scaled down to `max_width`."""
    h, w = image.shape[:2]
    if w > max_width:
        image = np.asarray(cv2.resize(image, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA))
    return encode_image(image, ".jpg", JPEG_QUALITY)


def _label(image: ImageArray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = origin
    cv2.rectangle(image, (x, y - th - base), (x + tw + 4, y + base - 2), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 2, y - 2), font, scale, colour, thick, cv2.LINE_AA)
