"""1:1 verification: are two face images the same person?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.pipeline import FacePipeline
from services.config import Settings
from services.engine import build_pipeline, verify_threshold


def compare(pipeline: FacePipeline, image_a: Path | bytes, image_b: Path | bytes, threshold: float) -> dict[str, Any]:
    a = pipeline.embed_primary(image_a)
    b = pipeline.embed_primary(image_b)
    similarity = float(a.vector @ b.vector)
    return {
        "similarity": round(similarity, 6),
        "is_same": similarity >= threshold,
        "threshold": threshold,
        "model": pipeline.embedder.spec.name,
        "contract": pipeline.contract.id,
        "quality": [round(a.quality.score, 4), round(b.quality.score, 4)],
    }


def verify_images(
    settings: Settings, image_a: Path, image_b: Path, threshold: float | None = None, **overrides: str | None
) -> dict[str, Any]:
    pipeline = build_pipeline(settings, **overrides)
    thr = threshold if threshold is not None else verify_threshold(settings, pipeline)
    return compare(pipeline, image_a, image_b, thr)
