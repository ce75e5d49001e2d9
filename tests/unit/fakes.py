"""Fakes for the unit tier: a detector and an embedder a real FacePipeline runs on, and MongoDB in memory.

A synthetic photo is a white background with textured squares, one per face. A square's colour is its person
(`identity`); its texture (random light and dark 2 px blocks, seeded by identity and `variant`) makes it sharp and
makes each variant another photo of the same person. FakeDetector finds the squares; FakeEmbedder reads the
person back from the chip's mean colour and returns that person's unit vector plus a little noise that depends on
the chip, so two photos of one person are close and two persons are far apart (cosine ~0 in 128 dimensions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import mongomock
import numpy as np

from model.alignment import ARCFACE_SIZE, ARCFACE_TEMPLATE
from model.pipeline import FacePipeline, PipelineOptions
from model.types import Detection, FloatArray, ImageArray
from model.zoo import EmbeddingContract, ModelSpec, Preprocessing
from services.storage.db import INDEXES, Collections, collections

BACKGROUND = 255
LEVELS = 9  # colour levels per channel: 9**3 identities
FIRST_LEVEL = 56
LEVEL_STEP = 16
DIM = 128
IMAGE_SIZE = (256, 256)  # (height, width): not enlarged before detection (detect_faces upscales under 160 px)


def identity_colour(identity: int) -> tuple[int, int, int]:
    """The RGB colour of a person's squares."""
    if not 0 <= identity < LEVELS**3:
        raise ValueError(f"identity {identity} is outside 0..{LEVELS**3 - 1}")
    r, g, b = identity % LEVELS, identity // LEVELS % LEVELS, identity // LEVELS**2
    return FIRST_LEVEL + LEVEL_STEP * r, FIRST_LEVEL + LEVEL_STEP * g, FIRST_LEVEL + LEVEL_STEP * b


@dataclass(frozen=True, slots=True)
class FaceSpec:
    """One square: who (`identity`), which photo of them (`variant`), where (top left, side) and how sharp."""

    identity: int
    variant: int = 0
    x: int = 64
    y: int = 64
    side: int = 128
    texture: int = 32  # 0: a flat square, sharpness 0, so a face under any quality gate


def draw(specs: Sequence[FaceSpec], size: tuple[int, int] = IMAGE_SIZE) -> ImageArray:
    """An RGB image with one textured square per spec on the white background."""
    image = np.full((*size, 3), BACKGROUND, dtype=np.uint8)
    for s in specs:
        rng = np.random.default_rng([s.identity, s.variant])
        blocks = rng.choice(np.array([-1, 1]), size=((s.side + 1) // 2, (s.side + 1) // 2))
        signs = np.kron(blocks, np.ones((2, 2), dtype=np.int64))[: s.side, : s.side, None]
        square = np.asarray(identity_colour(s.identity)) + s.texture * signs
        image[s.y : s.y + s.side, s.x : s.x + s.side] = np.clip(square, 0, 255).astype(np.uint8)
    return image


def png(image: ImageArray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def photo(*specs: FaceSpec, size: tuple[int, int] = IMAGE_SIZE) -> bytes:
    """PNG bytes of `draw(specs)` (lossless: the detector and embedder see exactly these pixels)."""
    return png(draw(specs, size))


def portrait(identity: int, variant: int = 0, texture: int = 32) -> bytes:
    """A photo of one person, centred, 128 px."""
    return photo(FaceSpec(identity, variant, texture=texture))


def blank() -> bytes:
    """A photo without a face."""
    return photo()


class FakeDetector:
    """Finds the squares: every blob that differs from the white background, landmarks placed as on a frontal face."""

    name = "fake-squares"

    def __init__(self, score: float = 0.99) -> None:
        self.score = score

    def detect(self, image: ImageArray) -> list[Detection]:
        mask = (np.abs(image.astype(np.int16) - BACKGROUND).max(axis=2) > 8).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        return [self._face(*(float(v) for v in stats[i, :4])) for i in range(1, n)]

    def _face(self, x: float, y: float, w: float, h: float) -> Detection:
        box = np.array([x, y, x + w, y + h], dtype=np.float32)
        scale = np.array([w, h], dtype=np.float32) / ARCFACE_SIZE
        landmarks = (ARCFACE_TEMPLATE * scale + np.array([x, y], dtype=np.float32)).astype(np.float32)
        return Detection(box=box, landmarks=landmarks, score=self.score)


def fake_spec(model: str = "fake", dim: int = DIM) -> ModelSpec:
    return ModelSpec(
        name=model,
        architecture="fake-squares",
        dim=dim,
        preprocessing=Preprocessing("fake-box-crop", ARCFACE_SIZE, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        weights={},
        license="test fake",
        upstream="tests/unit/fakes.py",
        verify_threshold=0.3,
        identify_threshold=0.5,
        threshold_source="fixed for the fakes",
    )


class FakeEmbedder:
    """The chip's person (from its mean colour) as a unit vector, plus `noise` (the norm of a random vector seeded
    by the chip's pixels): 0 gives every photo of a person the same vector, 0.2 a cosine of about 0.96."""

    runtime = "fake"
    device = "cpu"

    def __init__(self, model: str = "fake", noise: float = 0.2, dim: int = DIM) -> None:
        self.spec = fake_spec(model, dim)
        pre = self.spec.preprocessing
        self.contract = EmbeddingContract(model, dim, hashlib.sha256(model.encode()).hexdigest(), pre, flip=False)
        self.noise = noise

    def align(self, image: ImageArray, detection: Detection) -> ImageArray:
        """The box, resized to 112 px with nearest-neighbour sampling (pixel values are kept)."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (round(float(v)) for v in detection.box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, max(x2, x1 + 1)), min(h, max(y2, y1 + 1))
        crop = image[y1:y2, x1:x2]
        return np.asarray(cv2.resize(crop, (ARCFACE_SIZE, ARCFACE_SIZE), interpolation=cv2.INTER_NEAREST))

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray:
        vectors = [self._vector(chip) for chip in chips]
        return np.stack(vectors) if vectors else np.zeros((0, self.spec.dim), dtype=np.float32)

    def centre(self, identity: int) -> FloatArray:
        """The noise-free vector of a person."""
        return self._centre(tuple((c - FIRST_LEVEL) // LEVEL_STEP for c in identity_colour(identity)))

    def _centre(self, levels: tuple[int, ...]) -> FloatArray:
        v = np.random.default_rng([self.spec.dim, *levels]).normal(size=self.spec.dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def _vector(self, chip: ImageArray) -> FloatArray:
        mean = chip.reshape(-1, 3).mean(axis=0)
        levels = tuple(max(0, round((float(c) - FIRST_LEVEL) / LEVEL_STEP)) for c in mean)
        seed = int.from_bytes(hashlib.sha256(chip.tobytes()).digest()[:8], "little")
        noise = np.random.default_rng(seed).normal(size=self.spec.dim) * self.noise / np.sqrt(self.spec.dim)
        v = self._centre(levels) + noise
        return (v / np.linalg.norm(v)).astype(np.float32)


def fake_pipeline(options: PipelineOptions | None = None, model: str = "fake", noise: float = 0.2) -> FacePipeline:
    """A real FacePipeline on the fake detector and embedder."""
    return FacePipeline(FakeDetector(), FakeEmbedder(model, noise), options)


def fake_collections() -> Collections:
    """MongoDB in memory (mongomock) with services.storage.db's indexes: unique ones refuse duplicates as the server
    does, partial ones (persons' external ids) only where their filter matches."""
    db = mongomock.MongoClient(tz_aware=True).get_database("facereg")
    for name, models in INDEXES.items():
        for model in models:
            options = dict(model.document)
            keys = options.pop("key")
            # One by one: mongomock 4.3's create_indexes drops partialFilterExpression, create_index keeps it.
            db[name].create_index(list(keys.items()), **options)
    return collections(db)
