"""The Embedder protocol and the shared part of every ArcFace-style embedder."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from model.alignment import align_face
from model.types import Detection, FloatArray, ImageArray
from model.zoo import EmbeddingContract, ModelSpec


class Embedder(Protocol):
    """`align` cuts the model's input chip for one face; `embed` turns chips into unit vectors."""

    spec: ModelSpec
    contract: EmbeddingContract
    runtime: str
    device: str

    def align(self, image: ImageArray, detection: Detection) -> ImageArray: ...

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray: ...


def normalise_chips(batch: ImageArray, mean: Sequence[float], std: Sequence[float]) -> FloatArray:
    """NHWC uint8 RGB -> NCHW float32, (x / 255 - mean) / std per channel: what every network of the zoo sees."""
    scaled = batch.astype(np.float32) / np.float32(255.0)
    normalised = (scaled - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2), dtype=np.float32)


def l2_normalise(vectors: FloatArray) -> FloatArray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class ChipEmbedder(ABC):
    """Batching, flip test-time augmentation and normalisation around a network's forward pass."""

    spec: ModelSpec
    contract: EmbeddingContract
    runtime: str
    device: str

    def __init__(self, spec: ModelSpec, contract: EmbeddingContract, batch_size: int = 32) -> None:
        self.spec = spec
        self.contract = contract
        self.batch_size = batch_size

    def align(self, image: ImageArray, detection: Detection) -> ImageArray:
        return align_face(image, detection.landmarks, self.spec.preprocessing.input_size)

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray:
        if len(chips) == 0:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        out = []
        for start in range(0, len(chips), self.batch_size):
            batch = np.stack(chips[start : start + self.batch_size])
            vectors = self._forward(batch)
            if self.contract.flip:
                # Sum of the embeddings of the face and its mirror image (insightface's flip test).
                vectors = vectors + self._forward(np.ascontiguousarray(batch[:, :, ::-1]))
            out.append(vectors)
        return l2_normalise(np.concatenate(out).astype(np.float32))

    def to_tensor_layout(self, batch: ImageArray) -> FloatArray:
        """NHWC uint8 RGB -> NCHW float32 normalised as the model was trained."""
        pre = self.spec.preprocessing
        return normalise_chips(batch, pre.mean, pre.std)

    @abstractmethod
    def _forward(self, batch: ImageArray) -> FloatArray:
        """NHWC uint8 chips -> raw (unnormalised) embeddings."""
