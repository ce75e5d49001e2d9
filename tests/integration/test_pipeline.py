"""The face pipeline on real LFW faces: detection, small images, no-face policy, multiple faces, batching."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.detection import DetectorOptions
from model.embedders import Embedder
from model.errors import FaceTooSmall, InvalidImage, NoFace
from model.image_io import load_image
from model.pipeline import FacePipeline, PipelineOptions
from model.types import Detection, FloatArray, ImageArray

Img = Callable[[str, int], Path]


@pytest.mark.parametrize("pipeline_name", ["mfn", "mfn_yunet"])
def test_detects_one_face_with_landmarks_in_arcface_order(pipeline_name: str, request, lfw_image: Img) -> None:  # type: ignore[no-untyped-def]
    pipeline: FacePipeline = request.getfixturevalue(pipeline_name)
    image = load_image(lfw_image("Aaron_Peirsol", 1))
    face = pipeline.primary(image)
    lm = face.landmarks
    assert face.score > 0.8 and not face.fallback
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # viewer's left eye / mouth corner first
    assert lm[0, 1] < lm[2, 1] < lm[3, 1]  # eyes above nose above mouth
    x1, y1, x2, y2 = face.box
    assert 60 < (x1 + x2) / 2 < 190 and 60 < (y1 + y2) / 2 < 190  # LFW faces are centred


def test_same_person_scores_higher_than_different_people(mfn: FacePipeline, lfw_image: Img) -> None:
    a = mfn.embed_primary(lfw_image("Aaron_Peirsol", 1))
    b = mfn.embed_primary(lfw_image("Aaron_Peirsol", 2))
    c = mfn.embed_primary(lfw_image("George_W_Bush", 1))
    assert a.vector.shape == (128,) and abs(float(np.linalg.norm(a.vector)) - 1.0) < 1e-5
    assert float(a.vector @ b.vector) > mfn.spec.verify_threshold > float(a.vector @ c.vector)


def test_bytes_and_path_inputs_give_the_same_vector(mfn: FacePipeline, lfw_image: Img) -> None:
    path = lfw_image("Aaron_Peirsol", 1)
    assert np.allclose(mfn.embed_primary(path).vector, mfn.embed_primary(path.read_bytes()).vector, atol=1e-6)


@pytest.mark.parametrize("side", [64, 96])
def test_small_crops_are_upscaled_so_their_face_is_found(mfn: FacePipeline, lfw_image: Img, side: int) -> None:
    image = load_image(lfw_image("Aaron_Peirsol", 1))
    crop = cv2.resize(image[50:200, 50:200], (side, side), interpolation=cv2.INTER_AREA)
    face = mfn.primary(crop)
    assert not face.fallback
    assert face.box[2] <= side + 5  # coordinates are in the small image
    full = mfn.embed_primary(image).vector
    small = mfn.embed_primary(crop).vector
    assert float(full @ small) > 0.6  # still the same person


def test_no_face_is_an_error_by_default(mfn: FacePipeline) -> None:
    blank = np.full((200, 200, 3), 127, dtype=np.uint8)
    with pytest.raises(NoFace, match="no face"):
        mfn.embed_primary(blank)


def test_no_face_can_fall_back_to_a_flagged_centre_crop(mfn: FacePipeline) -> None:
    fallback = FacePipeline(mfn.detector, mfn.embedder, PipelineOptions(no_face="center_crop"))
    result = fallback.embed_primary(np.full((200, 300, 3), 127, dtype=np.uint8))
    assert result.detection.fallback
    assert result.quality.score == 0.0
    assert result.vector.shape == (128,)


def test_faces_under_the_minimum_size_raise_face_too_small(mfn: FacePipeline, lfw_image: Img) -> None:
    strict = FacePipeline(mfn.detector, mfn.embedder, PipelineOptions(detector=DetectorOptions(min_face_size=200)))
    with pytest.raises(FaceTooSmall, match="at least 200 px"):
        strict.embed_primary(lfw_image("Aaron_Peirsol", 1))


def test_every_face_of_a_group_photo_is_embedded(mfn: FacePipeline, lfw_image: Img) -> None:
    left = load_image(lfw_image("Aaron_Peirsol", 1))[40:210, 40:210]
    right = load_image(lfw_image("George_W_Bush", 1))[40:210, 40:210]
    group = np.concatenate([left, np.full((170, 60, 3), 255, np.uint8), right], axis=1)
    faces = mfn.embed_all(group)
    assert len(faces) == 2
    solo = mfn.embed_primary(lfw_image("George_W_Bush", 1)).vector
    best = max(faces, key=lambda f: float(f.vector @ solo))
    assert best.detection.box[0] > 200  # the Bush face is the right-hand one


class CountingEmbedder:
    """The real embedder, recording how many chips each `embed` call gets."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.batches = inner, list[int]()
        self.spec, self.contract, self.runtime, self.device = inner.spec, inner.contract, inner.runtime, inner.device

    def align(self, image: ImageArray, detection: Detection) -> ImageArray:
        return self.inner.align(image, detection)

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray:
        self.batches.append(len(chips))
        return self.inner.embed(chips)


def counting(pipeline: FacePipeline) -> tuple[FacePipeline, CountingEmbedder]:
    embedder = CountingEmbedder(pipeline.embedder)
    return FacePipeline(pipeline.detector, embedder, pipeline.options), embedder


def test_faces_of_several_images_are_embedded_in_one_call(mfn: FacePipeline, lfw_image: Img) -> None:
    images = [load_image(lfw_image("Aaron_Peirsol", n)) for n in (1, 2, 3)]
    pipeline, embedder = counting(mfn)
    faces = pipeline.embed_faces((image, mfn.primary(image)) for image in images)
    assert embedder.batches == [3]
    for image, face in zip(images, faces, strict=True):
        alone = mfn.embed_primary(image)
        assert np.allclose(face.vector, alone.vector, atol=1e-5)
        assert np.array_equal(face.chip, alone.chip) and face.quality == alone.quality
    assert pipeline.describe() == {
        "model": "mobilefacenet",
        "runtime": "torch",
        "detector": "mtcnn",
        "contract": mfn.contract.id,
    }


def test_batch_embedding_keeps_failures_in_their_slots(mfn: FacePipeline, lfw_image: Img, tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff not really a jpeg")
    pipeline, embedder = counting(mfn)
    results = pipeline.embed_primary_many([lfw_image("Aaron_Peirsol", 1), junk, lfw_image("Aaron_Peirsol", 2)])
    assert embedder.batches == [2]
    assert isinstance(results[1], InvalidImage)
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert float(results[0].vector @ results[2].vector) > 0.5  # type: ignore[union-attr]


def test_quality_prefers_a_sharp_frontal_face_to_a_blurred_one(mfn: FacePipeline, lfw_image: Img) -> None:
    image = load_image(lfw_image("Aaron_Peirsol", 1))
    sharp = mfn.embed_primary(image).quality
    blurred = mfn.embed_primary(cv2.GaussianBlur(image, (0, 0), 3.0)).quality
    assert 0.0 < blurred.score < sharp.score <= 1.0
    assert blurred.sharpness < sharp.sharpness
    assert abs(sharp.roll_deg) < 15 and abs(sharp.yaw_deg) < 30
