from __future__ import annotations

import numpy as np
import pytest

from model.detection.selection import primary_face
from model.types import Detection


def _face(x1: float, y1: float, x2: float, y2: float) -> Detection:
    box = np.array([x1, y1, x2, y2], dtype=np.float32)
    return Detection(box=box, landmarks=np.zeros((5, 2), dtype=np.float32), score=0.99)


def test_a_central_face_beats_a_larger_neighbour_cut_by_the_border() -> None:
    subject = _face(80, 70, 170, 180)  # 90 px wide, centred in 250x250
    neighbour = _face(-40, 40, 70, 190)  # 110 px wide, half outside the frame
    assert primary_face([neighbour, subject], 250, 250) is subject


def test_the_larger_of_two_central_faces_wins() -> None:
    small, large = _face(100, 100, 140, 140), _face(90, 90, 160, 160)
    assert primary_face([small, large], 250, 250) is large


def test_no_faces_is_an_error() -> None:
    with pytest.raises(ValueError):
        primary_face([], 100, 100)
