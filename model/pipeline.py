"""The whole face pipeline: decode -> detect -> choose -> align -> quality -> embed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from model.alignment import centre_crop_landmarks
from model.detection import Detector, DetectorOptions, detect_faces, primary_face
from model.embedders import Embedder
from model.errors import FaceregError, FaceTooSmall, NoFace
from model.image_io import ImageLimits, check_dimensions, decode_image, load_image
from model.quality import FaceQuality, assess
from model.types import Detection, FloatArray, ImageArray
from model.zoo import EmbeddingContract, ModelSpec

ImageSource = bytes | str | Path | ImageArray
NoFacePolicy = Literal["error", "center_crop"]


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    detector: DetectorOptions = field(default_factory=DetectorOptions)
    no_face: NoFacePolicy = "error"
    limits: ImageLimits = field(default_factory=ImageLimits)


@dataclass(frozen=True, slots=True)
class FaceEmbedding:
    detection: Detection
    quality: FaceQuality
    vector: FloatArray
    chip: ImageArray


class FaceFinder:
    """Decode -> detect -> choose: the faces of an image, without an embedder (training aligns with it)."""

    def __init__(self, detector: Detector, options: PipelineOptions | None = None) -> None:
        self.detector = detector
        self.options = options or PipelineOptions()

    def load(self, source: ImageSource) -> ImageArray:
        """Pixels from bytes or a file (reduced to `limits.work_pixels`), or an array, checked as a declared size is."""
        if isinstance(source, np.ndarray):
            check_dimensions(source.shape[1], source.shape[0], self.options.limits)
            return source
        if isinstance(source, bytes):
            return decode_image(source, self.options.limits)
        return load_image(source, self.options.limits)

    def find_faces(self, image: ImageArray) -> list[Detection]:
        """Every face of at least the minimum size; NoFace / FaceTooSmall / a centre crop otherwise."""
        found = detect_faces(self.detector, image, self.options.detector)
        min_size = self.options.detector.min_face_size
        faces = [f for f in found if f.size >= min_size]
        if faces:
            return faces
        if self.options.no_face == "center_crop":
            return [self._centre_crop(image)]
        if found:
            biggest = max(f.size for f in found)
            raise FaceTooSmall(f"the largest face is {biggest:.0f} px; at least {min_size} px is required")
        raise NoFace("no face found in the image; use a photo where the face is visible and upright")

    def primary(self, image: ImageArray) -> Detection:
        return primary_face(self.find_faces(image), *image.shape[:2])

    @staticmethod
    def _centre_crop(image: ImageArray) -> Detection:
        h, w = image.shape[:2]
        side = float(min(h, w))
        x0, y0 = (w - side) / 2.0, (h - side) / 2.0
        return Detection(
            box=np.array([x0, y0, x0 + side, y0 + side], dtype=np.float32),
            landmarks=centre_crop_landmarks(h, w),
            score=0.0,
            fallback=True,
        )


class FacePipeline(FaceFinder):
    """The finder plus the embedder: every face of an image as a vector."""

    def __init__(self, detector: Detector, embedder: Embedder, options: PipelineOptions | None = None) -> None:
        super().__init__(detector, options)
        self.embedder = embedder

    @property
    def contract(self) -> EmbeddingContract:
        return self.embedder.contract

    @property
    def spec(self) -> ModelSpec:
        """The embedding model's catalogue entry: its name and calibrated default thresholds."""
        return self.embedder.spec

    @property
    def device(self) -> str:
        return self.embedder.device

    def describe(self) -> dict[str, str]:
        """What reports record about the pipeline: model, runtime, detector and embedding contract."""
        return {
            "model": self.spec.name,
            "runtime": self.embedder.runtime,
            "detector": self.detector.name,
            "contract": self.contract.id,
        }

    def embed_faces(self, faces: Iterable[tuple[ImageArray, Detection]]) -> list[FaceEmbedding]:
        """Each (image, face) aligned, every chip embedded in one embedder call, each face's quality assessed.

        `faces` is read one pair at a time and only the chips are kept: from a generator, each image can be
        freed once its face is aligned."""
        detections: list[Detection] = []
        chips: list[ImageArray] = []
        for image, detection in faces:
            detections.append(detection)
            chips.append(self.embedder.align(image, detection))
        vectors = self.embedder.embed(chips)
        return [FaceEmbedding(d, assess(d, c), v, c) for d, c, v in zip(detections, chips, vectors, strict=True)]

    def embed_detections(self, image: ImageArray, detections: Sequence[Detection]) -> list[FaceEmbedding]:
        return self.embed_faces((image, d) for d in detections)

    def embed_primary(self, source: ImageSource) -> FaceEmbedding:
        image = self.load(source)
        return self.embed_detections(image, [self.primary(image)])[0]

    def embed_all(self, source: ImageSource) -> list[FaceEmbedding]:
        image = self.load(source)
        return self.embed_detections(image, self.find_faces(image))

    def embed_primary_many(self, sources: Sequence[ImageSource]) -> list[FaceEmbedding | FaceregError]:
        """The primary face of each source, embedded in one batch; a failure stays in its slot."""
        failures: dict[int, FaceregError] = {}

        def primaries() -> Iterator[tuple[ImageArray, Detection]]:
            for i, source in enumerate(sources):
                try:
                    image = self.load(source)
                    detection = self.primary(image)
                except FaceregError as exc:
                    failures[i] = exc
                    continue
                yield image, detection

        embedded = iter(self.embed_faces(primaries()))
        return [failures[i] if i in failures else next(embedded) for i in range(len(sources))]
