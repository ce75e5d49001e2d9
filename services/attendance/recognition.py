"""Aligned face chips from a camera -> embeddings -> the gallery's Top-K persons (the worker's half of realtime)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.alignment import align_face
from model.errors import InvalidImage
from model.types import Detection, FloatArray, ImageArray
from model.zoo import ModelSpec, get_spec
from services.context import ServiceContext
from services.errors import ServiceError
from services.registry.galleries import check_contract, get_gallery
from services.search.identification import Match, ranked_matches
from services.storage.records import Gallery

ARCFACE_ALIGNMENT = "arcface-112"


@dataclass(frozen=True, slots=True)
class ChipMatches:
    matches: tuple[Match, ...]  # best first
    threshold: float  # the gallery's 1:N threshold
    vector: FloatArray


def chip_size(gallery: Gallery, model_dirs: Sequence[Path]) -> int:
    """The side of the chips a camera sends for `gallery`: its model's input, aligned to the ArcFace template
    (`model_dirs`, the settings' model_dir: where a custom model's card is found)."""
    spec = get_spec(gallery.model, model_dirs)
    _require_template_alignment(spec)
    return spec.preprocessing.input_size


def cut_chip(frame: ImageArray, detection: Detection, size: int) -> ImageArray:
    """The face aligned to the ArcFace template, `size` pixels square."""
    return align_face(frame, detection.landmarks, size)


def recognise_chips(
    ctx: ServiceContext, gallery_name: str, chips: Sequence[ImageArray], top_k: int = 3
) -> list[ChipMatches]:
    """Each aligned chip embedded (one batch) and searched in the gallery."""
    gallery = get_gallery(ctx, gallery_name)
    check_contract(gallery, ctx.pipeline)
    if not chips:
        return []
    size = ctx.pipeline.spec.preprocessing.input_size  # the gallery's model: its contract was checked
    for chip in chips:
        if chip.shape != (size, size, 3):
            raise InvalidImage(f"a face chip is {chip.shape[1]}x{chip.shape[0]}; {gallery.model} takes {size}x{size}")
    vectors = ctx.pipeline.embedder.embed(list(chips))
    ranked = ranked_matches(ctx, gallery, np.asarray(vectors, dtype=np.float32), top_k)
    threshold = gallery.identify_threshold
    return [ChipMatches(tuple(m), threshold, v) for m, v in zip(ranked, vectors, strict=True)]


def _require_template_alignment(spec: ModelSpec) -> None:
    if spec.preprocessing.alignment != ARCFACE_ALIGNMENT:
        raise ServiceError(
            f"realtime attendance sends ArcFace-aligned face chips; {spec.name} uses {spec.preprocessing.alignment} "
            "alignment: use a gallery of an ArcFace-family model (mobilefacenet, arcface-r50, a custom:<name> one)"
        )
