"""RetinaFace on real LFW faces: found, placed like MTCNN, nothing in noise, usable by the pipeline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.detection import Detector, DetectorOptions, create_detector, detect_faces, primary_face
from model.errors import FaceregError, ModelUnavailable
from model.image_io import load_image
from model.pipeline import FacePipeline
from model.types import Detection, ImageArray
from services.config import Settings
from services.engine import build_pipeline

pytestmark = pytest.mark.accuracy

N_IMAGES = 100


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: with other processes busy on two cores a second one made this file 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def rf_pipeline(settings: Settings) -> FacePipeline:
    """MobileFaceNet behind RetinaFace. Missing weights skip locally but fail in CI, as missing LFW does."""
    try:
        return build_pipeline(settings, model="mobilefacenet", runtime="torch", detector="retinaface", torch_threads=1)
    except ModelUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def retinaface(rf_pipeline: FacePipeline) -> Detector:
    return rf_pipeline.detector


@pytest.fixture(scope="module")
def images(lfw: Path) -> list[ImageArray]:
    """The first photo of every 57th person: 100 different people."""
    people = sorted(p for p in (lfw / "images").iterdir() if p.is_dir())[::57][:N_IMAGES]
    return [load_image(min(p.glob("*.jpg"))) for p in people]


def _subject(faces: list[Detection], image: ImageArray) -> Detection | None:
    """The photo's primary face when its box holds the image centre (LFW centres the subject)."""
    if not faces:
        return None
    h, w = image.shape[:2]
    face = primary_face(faces, h, w)
    x1, y1, x2, y2 = face.box
    return face if x1 < w / 2 < x2 and y1 < h / 2 < y2 else None


@pytest.fixture(scope="module")
def found(retinaface: Detector, images: list[ImageArray]) -> list[Detection | None]:
    return [_subject(detect_faces(retinaface, im, DetectorOptions()), im) for im in images]


def test_the_subject_is_found_in_nearly_every_photo(found: list[Detection | None]) -> None:
    assert len(found) == N_IMAGES
    assert sum(f is not None for f in found) >= 0.98 * N_IMAGES


def test_boxes_and_landmarks_are_sane(found: list[Detection | None]) -> None:
    for face in (f for f in found if f is not None):
        assert 40 <= face.width <= 200 and 1.0 <= face.height / face.width <= 1.8
        (x1, y1, x2, y2), pts = face.box, face.landmarks
        assert (pts[:, 0] > x1).all() and (pts[:, 0] < x2).all() and (pts[:, 1] > y1).all() and (pts[:, 1] < y2).all()
        eye_l, eye_r, nose, mouth_l, mouth_r = pts
        # Viewer's left before viewer's right; eyes above the nose above the mouth.
        assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0]
        assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_landmarks_match_mtcnn_point_for_point(
    settings: Settings, images: list[ImageArray], found: list[Detection | None]
) -> None:
    mtcnn = create_detector("mtcnn", settings.model_dir)
    distances, same_order = [], 0
    for image, face in zip(images, found, strict=True):
        reference = _subject(detect_faces(mtcnn, image, DetectorOptions()), image)
        if face is None or reference is None:
            continue
        pairwise = np.linalg.norm(face.landmarks[:, None] - reference.landmarks[None], axis=2)
        distances.append(np.diag(pairwise))
        same_order += bool((pairwise.argmin(axis=1) == np.arange(5)).all())
    d = np.array(distances)
    assert len(d) >= 0.95 * N_IMAGES
    assert same_order >= 0.98 * len(d)
    # Measured: about 2-3 px per point on these 250x250 photos; swapped eyes would be ~40 px off.
    assert np.median(d.mean(axis=1)) <= 4.0
    assert (d.max(axis=1) <= 8.0).mean() >= 0.9


def test_a_64_px_face_is_found_after_the_upscale(retinaface: Detector, images: list[ImageArray]) -> None:
    for image in images[:5]:
        small = np.asarray(cv2.resize(image[45:205, 45:205], (64, 64), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        face = _subject(detect_faces(retinaface, small, DetectorOptions()), small)
        assert face is not None and face.size >= DetectorOptions().min_face_size


def test_no_face_in_blank_noise_or_tiny_images(retinaface: Detector) -> None:
    rng = np.random.default_rng(0)
    blank = np.full((250, 250, 3), 127, dtype=np.uint8)
    noise = rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)
    for image in (blank, noise, np.zeros((20, 20, 3), dtype=np.uint8), noise[:1, :1]):
        assert retinaface.detect(image) == []
        assert detect_faces(retinaface, image, DetectorOptions()) == []


def test_same_person_pairs_score_clearly_above_different_people(rf_pipeline: FacePipeline, lfw: Path) -> None:
    rows = [ln.split(",") for ln in (lfw / "verify_pairs_folds.csv").read_text().splitlines()[1:]]
    same = [r for r in rows if r[2] == "1"][:300:30]
    different = [r for r in rows if r[2] == "0"][:300:30]

    def cosines(pairs: list[list[str]]) -> np.ndarray:
        out = rf_pipeline.embed_primary_many([lfw / p for r in pairs for p in r[:2]])
        vectors = []
        for e in out:
            assert not isinstance(e, FaceregError), e
            vectors.append(e.vector)
        return np.array([float(np.dot(a, b)) for a, b in zip(vectors[::2], vectors[1::2], strict=True)])

    same_cos, different_cos = cosines(same), cosines(different)
    assert len(same_cos) == len(different_cos) == 10
    assert same_cos.min() > different_cos.max()
    assert same_cos.mean() - different_cos.mean() >= 0.4
