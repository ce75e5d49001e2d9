"""1:1 verification: are two face images the same person?"""

from __future__ import annotations

import math
from numbers import Real
from pathlib import Path
from typing import Any

from model.pipeline import FacePipeline
from services.config import Settings
from services.engine import build_pipeline, verify_threshold
from services.errors import ServiceError


class InvalidThreshold(ServiceError):
    """A similarity threshold that is not a finite number from -1 to 1."""

    code = "invalid_threshold"


def checked_similarity(value: object, what: str = "threshold") -> float:
    """`value` as a cosine similarity threshold: a finite number from -1 to 1 (NaN would match nothing or
    everything, depending on the comparison), else InvalidThreshold."""
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or not -1.0 <= number <= 1.0:
        raise InvalidThreshold(f"{what} must be a finite number from -1 to 1, not {value!r}")
    return number


def compare(pipeline: FacePipeline, image_a: Path | bytes, image_b: Path | bytes, threshold: float) -> dict[str, Any]:
    threshold = checked_similarity(threshold)
    a = pipeline.embed_primary(image_a)
    b = pipeline.embed_primary(image_b)
    similarity = float(a.vector @ b.vector)
    return {
        "similarity": round(similarity, 6),
        "is_same": similarity >= threshold,
        "threshold": threshold,
        "model": pipeline.spec.name,
        "contract": pipeline.contract.id,
        "quality": [round(a.quality.score, 4), round(b.quality.score, 4)],
    }


def verify_images(
    settings: Settings, image_a: Path, image_b: Path, threshold: float | None = None, **overrides: str | None
) -> dict[str, Any]:
    if threshold is not None:
        checked_similarity(threshold)  # before the model loads
    pipeline = build_pipeline(settings, **overrides)
    thr = threshold if threshold is not None else verify_threshold(settings, pipeline)
    return compare(pipeline, image_a, image_b, thr)
