"""The annotated camera frame: boxes in the state's colour, a readable JPEG, the frame itself untouched."""

from __future__ import annotations

import cv2
import numpy as np

from services.attendance.annotate import KNOWN, UNKNOWN, FaceLabel, annotate, to_jpeg


def test_boxes_are_drawn_on_a_copy_and_the_jpeg_decodes_at_most_max_width() -> None:
    frame = np.full((480, 1280, 3), 128, dtype=np.uint8)
    faces = [
        FaceLabel(np.array([100, 100, 200, 220], dtype=np.float32), "Ada Lovelace 0.71", "known"),
        FaceLabel(np.array([600, 100, 700, 220], dtype=np.float32), "unknown", "unknown"),
    ]
    out = annotate(frame, faces, 24.5, "door")
    assert (frame == 128).all()  # the source frame is not drawn on
    assert tuple(out[160, 100]) == KNOWN and tuple(out[160, 600]) == UNKNOWN  # the boxes' left edges
    decoded = cv2.imdecode(np.frombuffer(to_jpeg(out, max_width=640), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 640, 3)
