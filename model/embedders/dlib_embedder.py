"""dlib's ResNet face descriptor: a zero-download model (its files ship on PyPI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.embedders.base import ChipEmbedder
from model.errors import ModelUnavailable
from model.types import Detection, FloatArray, ImageArray
from model.zoo import EmbeddingContract, ModelSpec


class DlibEmbedder(ChipEmbedder):
    """Alignment is dlib's own: its 5-point shape predictor inside our box, then `get_face_chip`."""

    runtime = "dlib"
    device = "cpu"

    def __init__(
        self, spec: ModelSpec, contract: EmbeddingContract, weights: Path, shape_predictor: Path, batch_size: int = 32
    ) -> None:
        super().__init__(spec, contract, batch_size)
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable("the dlib model needs the PyPI package dlib-bin") from exc
        self._dlib = dlib
        self._net = dlib.face_recognition_model_v1(str(weights))
        self._shapes = dlib.shape_predictor(str(shape_predictor))

    def align(self, image: ImageArray, detection: Detection) -> ImageArray:
        x1, y1, x2, y2 = (round(float(v)) for v in detection.box)
        shape = self._shapes(image, self._dlib.rectangle(x1, y1, x2, y2))
        size = self.spec.preprocessing.input_size
        return np.ascontiguousarray(self._dlib.get_face_chip(image, shape, size=size, padding=0.25))

    def _forward(self, batch: ImageArray) -> FloatArray:
        chips = [np.ascontiguousarray(c) for c in batch]
        return np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32)
