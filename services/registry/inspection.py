"""A photo checked before enrollment: its faces, their quality, and what enrolling it would warn about.

Nothing is written: the dashboard shows this next to each photo so a person can swap a bad one
before submitting, and the enrollment itself applies the same rules again.
"""

from __future__ import annotations

from typing import Any

from model.detection import primary_face
from model.errors import FaceregError, error_info
from services.context import ServiceContext
from services.errors import ContractMismatch, NotFound
from services.registry.enrollment import lookalike_warnings, weak_points
from services.registry.galleries import check_contract, get_gallery


def inspect_photo(
    ctx: ServiceContext, data: bytes, gallery_name: str | None = None, person_id: str | None = None
) -> dict[str, Any]:
    """{"faces": [{box, quality}], "primary": index or None, "warnings": [...], "error": None or, when the photo
    cannot be read, {"code", "message"}}."""
    pipeline = ctx.pipeline
    try:
        pixels = pipeline.load(data)
    except FaceregError as exc:
        return {"faces": [], "primary": None, "warnings": [], "error": error_info(exc).to_dict()}
    try:
        detections = pipeline.find_faces(pixels)
    except FaceregError as exc:
        return {"faces": [], "primary": None, "warnings": [str(exc)], "error": None}
    embedded = pipeline.embed_detections(pixels, detections)
    faces = [{"box": [round(float(v), 1) for v in e.detection.box], "quality": e.quality.to_dict()} for e in embedded]
    main = primary_face(detections, *pixels.shape[:2])
    index = next(i for i, d in enumerate(detections) if d is main)
    warnings = []
    if len(detections) > 1:
        warnings.append(f"{len(detections)} faces found; an enrollment photo should show one person")
    chosen = embedded[index]
    if chosen.quality.score < ctx.settings.enroll_min_quality:
        warnings.append(
            f"low quality {chosen.quality.score:.2f} (under {ctx.settings.enroll_min_quality:.2f}: "
            f"{weak_points(chosen.quality)}); it will be refused"
        )
    try:
        gallery = get_gallery(ctx, gallery_name or ctx.settings.gallery)
        check_contract(gallery, pipeline)
        warnings += lookalike_warnings(ctx, gallery, person_id, chosen.vector)
    except NotFound:
        pass  # a gallery not created yet holds nobody to look like
    except ContractMismatch as exc:
        warnings.append(str(exc))
    return {"faces": faces, "primary": index, "warnings": warnings, "error": None}
