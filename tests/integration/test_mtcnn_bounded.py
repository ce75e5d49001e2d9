"""The bounded MTCNN cascade: facenet-pytorch's results on real faces, a bounded candidate count on many."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.detection.mtcnn import MAX_CANDIDATES, MTCNNDetector
from model.image_io import load_image
from model.types import ImageArray

Img = Callable[[str, int], Path]

# Single faces, and photos with two or three (Alfred_Ford) faces.
PEOPLE = [
    "Aaron_Peirsol",
    "George_W_Bush",
    "Colin_Powell",
    "Serena_Williams",
    "Tony_Blair",
    "Alex_Wallau",
    "Alfred_Ford",
    "Amy_Brenneman",
    "Antonio_Banderas",
    "Atom_Egoyan",
]


@pytest.fixture(scope="module")
def detector() -> MTCNNDetector:
    return MTCNNDetector()


@pytest.fixture(scope="module")
def tiled(lfw_image: Img) -> ImageArray:
    """1448x1448 (2.1 MP, the detection budget) tiled with a 40 px LFW face: 1,369 faces."""
    face = cv2.resize(load_image(lfw_image("Aaron_Peirsol", 1))[40:210, 40:210], (40, 40), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.tile(face, (37, 37, 1))[:1448, :1448])


@pytest.mark.parametrize("person", PEOPLE)
def test_results_are_facenets_own(detector: MTCNNDetector, lfw_image: Img, person: str) -> None:
    image = load_image(lfw_image(person, 1))
    boxes, probs, points = detector._mtcnn.detect(image, landmarks=True)  # facenet-pytorch's own cascade
    found = detector.detect(image)
    assert boxes is not None and len(found) == len(boxes)
    for face, box, prob, lm in zip(found, boxes, probs, points, strict=True):
        assert np.abs(face.box - np.asarray(box, np.float32)).max() < 1e-3
        assert np.abs(face.landmarks - np.asarray(lm, np.float32)).max() < 1e-3
        assert face.score == pytest.approx(float(prob), abs=1e-5)


def test_many_small_faces_are_found_with_a_bounded_candidate_count(detector: MTCNNDetector, tiled: ImageArray) -> None:
    # facenet passes about 18,000 stage-1 candidates of this image on (+880 MB, 17 s on one core).
    proposals = detector.proposals(tiled)
    assert len(proposals) == MAX_CANDIDATES  # the bound is reached, and holds
    assert np.all(np.diff(proposals[:, 4]) <= 0)  # the best-scoring ones are kept
    found = detector.detect(tiled)
    assert 0.9 * MAX_CANDIDATES <= len(found) <= MAX_CANDIDATES
    centres = np.array([(f.box[:2] + f.box[2:]) / 2 for f in found])
    tiles = {(int(x) // 40, int(y) // 40) for x, y in centres}
    assert len(tiles) == len(found)  # one face per tile
    assert all(15 < f.size < 40 for f in found)  # the tile's face (about 20 px), never a box over several


def test_an_image_too_small_for_the_pyramid_has_no_faces(detector: MTCNNDetector) -> None:
    # facenet-pytorch raises here (it concatenates an empty list of pyramid levels).
    assert detector.detect(np.full((16, 16, 3), 127, dtype=np.uint8)) == []
