from __future__ import annotations

import numpy as np

from model.alignment import ARCFACE_TEMPLATE, align_face, centre_crop_landmarks, similarity_transform


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_similarity() -> None:
    angle, scale, shift = np.deg2rad(17.0), 2.3, np.array([40.0, -12.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE.astype(np.float64)
    dst = scale * src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(_apply(matrix, src), dst, atol=1e-3)
    assert np.allclose(matrix[:, :2], scale * rot, atol=1e-4)


def test_similarity_transform_never_reflects() -> None:
    src = ARCFACE_TEMPLATE.astype(np.float64)
    mirrored = src * np.array([-1.0, 1.0])
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_align_face_puts_landmarks_on_the_template() -> None:
    # An image with a bright dot on each landmark of a face twice the template size, shifted.
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    landmarks = (ARCFACE_TEMPLATE * 2.0 + np.array([100.0, 80.0])).astype(np.float32)
    for x, y in landmarks.round().astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    chip = align_face(image, landmarks)
    assert chip.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE.round().astype(int):
        assert chip[y, x].max() > 100


def test_centre_crop_landmarks_are_inside_the_central_square() -> None:
    pts = centre_crop_landmarks(300, 500)
    assert pts.shape == (5, 2)
    assert (pts[:, 0] > 100).all() and (pts[:, 0] < 400).all()
    assert (pts[:, 1] > 0).all() and (pts[:, 1] < 300).all()
    assert pts[0, 0] < pts[1, 0]  # viewer's left eye first
