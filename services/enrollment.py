"""Enrollment: a person and their photos -> quality-gated, embedded, stored and indexed faces."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from model.detection import primary_face
from model.errors import FaceregError, LowQuality, MultipleFaces
from model.quality import FaceQuality, assess
from model.types import Detection, FloatArray, ImageArray
from services.context import ServiceContext
from services.errors import ServiceError
from services.face_writes import face_id, project, write_faces
from services.galleries import ensure_gallery
from services.persons import PersonInput, create_or_get_person, names_of
from services.records import Face, Gallery, utcnow

Status = Literal["enrolled", "already_enrolled", "rejected"]


@dataclass(frozen=True, slots=True)
class ImageInput:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    name: str
    status: Status
    reason: str = ""
    face_id: str | None = None
    quality: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EnrollmentResult:
    person_id: str
    display_name: str
    gallery: str
    person_created: bool
    outcomes: list[ImageOutcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "display_name": self.display_name,
            "gallery": self.gallery,
            "person_created": self.person_created,
            "enrolled": self.count("enrolled"),
            "already_enrolled": self.count("already_enrolled"),
            "rejected": self.count("rejected"),
            "images": [
                {
                    "name": o.name,
                    "status": o.status,
                    "reason": o.reason,
                    "face_id": o.face_id,
                    "quality": o.quality,
                    "warnings": list(o.warnings),
                }
                for o in self.outcomes
            ],
        }


@dataclass(frozen=True, slots=True)
class EnrollOptions:
    """Per-call policy; defaults come from the settings."""

    multi_face: Literal["error", "largest"]
    min_quality: float

    @classmethod
    def from_settings(cls, ctx: ServiceContext) -> EnrollOptions:
        return cls(ctx.settings.enroll_multi_face, ctx.settings.enroll_min_quality)


@dataclass(slots=True)
class _Prepared:
    image: ImageInput
    sha256: str
    pixels: ImageArray
    detection: Detection
    chip: ImageArray
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class EnrollRequest:
    person: PersonInput
    images: Sequence[ImageInput]


def enroll(
    ctx: ServiceContext,
    person: PersonInput,
    images: Sequence[ImageInput],
    gallery_name: str | None = None,
    actor: str = "system",
    options: EnrollOptions | None = None,
) -> EnrollmentResult:
    """Enroll each image's face; every image gets an outcome, and one bad photo never sinks the rest."""
    return enroll_many(ctx, [EnrollRequest(person, images)], gallery_name, actor, options)[0]


def enroll_many(
    ctx: ServiceContext,
    requests: Sequence[EnrollRequest],
    gallery_name: str | None = None,
    actor: str = "system",
    options: EnrollOptions | None = None,
) -> list[EnrollmentResult]:
    """Several persons at once: the faces of all their images are embedded in one batch."""
    opts = options or EnrollOptions.from_settings(ctx)
    gallery = ensure_gallery(ctx, gallery_name or ctx.settings.gallery)
    if gallery.reindexing_to is not None:
        raise ServiceError(f"gallery {gallery.name!r} is being re-indexed to another model; enroll when that finishes")
    persons = [create_or_get_person(ctx, r.person, actor) for r in requests]
    outcomes: dict[tuple[int, int], ImageOutcome] = {}
    prepared: list[tuple[tuple[int, int], str, _Prepared]] = []
    for p, (req, (record, _)) in enumerate(zip(requests, persons, strict=True)):
        for i, img in enumerate(req.images):
            try:
                outcome, prep = _known_or_prepared(ctx, gallery, record.id, img, opts)
            except FaceregError as exc:
                outcome, prep = ImageOutcome(img.name, "rejected", f"{type(exc).__name__}: {exc}"), None
            if prep is not None:
                prepared.append(((p, i), record.id, prep))
            elif outcome is not None:
                outcomes[(p, i)] = outcome
    vectors = ctx.pipeline.embedder.embed([prep.chip for _, _, prep in prepared])
    faces: list[Face] = []
    for (key, person_id, prep), vector in zip(prepared, vectors, strict=True):
        outcomes[key], face = _gate_and_build(ctx, gallery, person_id, prep, vector, opts.min_quality)
        if face is not None:
            faces.append(face)
    write_faces(ctx, gallery, faces)
    return [
        EnrollmentResult(
            record.id, record.display_name, gallery.name, created, [outcomes[(p, i)] for i in range(len(req.images))]
        )
        for p, (req, (record, created)) in enumerate(zip(requests, persons, strict=True))
    ]


def _known_or_prepared(
    ctx: ServiceContext, gallery: Gallery, person_id: str, img: ImageInput, opts: EnrollOptions
) -> tuple[ImageOutcome | None, _Prepared | None]:
    """An outcome for an image already enrolled for this person, or the image prepared for embedding."""
    sha = hashlib.sha256(img.data).hexdigest()
    existing = ctx.db.faces.find_one({"gallery": gallery.name, "person_id": person_id, "image_sha256": sha})
    if existing is None:
        return None, _prepare(ctx, img, sha, opts)
    if existing["vector_state"] == "pending":
        project(ctx, gallery, [Face.from_doc(existing)])  # finish an interrupted earlier enrollment
    reason = "this image is already enrolled for this person"
    return ImageOutcome(img.name, "already_enrolled", reason, face_id=str(existing["_id"])), None


def _prepare(ctx: ServiceContext, img: ImageInput, sha: str, opts: EnrollOptions) -> _Prepared:
    pipeline = ctx.pipeline
    pixels = pipeline.load(img.data)
    faces = pipeline.find_faces(pixels)
    warnings: list[str] = []
    if len(faces) > 1:
        if opts.multi_face == "error":
            raise MultipleFaces(
                f"{len(faces)} faces found; an enrollment photo must show exactly one person "
                "(or set FACEREG_ENROLL_MULTI_FACE=largest)"
            )
        warnings.append(f"{len(faces)} faces found; the main one was used")
    detection = primary_face(faces, *pixels.shape[:2])
    return _Prepared(img, sha, pixels, detection, pipeline.embedder.align(pixels, detection), warnings)


def _gate_and_build(
    ctx: ServiceContext, gallery: Gallery, person_id: str, prep: _Prepared, vector: FloatArray, min_quality: float
) -> tuple[ImageOutcome, Face | None]:
    """Quality gate, duplicate-identity check, stored files and the face record."""
    quality = assess(prep.detection, prep.chip)
    name = prep.image.name
    if prep.detection.fallback:
        return ImageOutcome(name, "rejected", "NoFace: no face found in the photo"), None
    if quality.score < min_quality:
        reason = LowQuality(f"quality {quality.score:.2f} is under {min_quality:.2f} ({weak_points(quality)})")
        return ImageOutcome(name, "rejected", f"LowQuality: {reason}", quality=quality.to_dict()), None
    warnings = [*prep.warnings, *lookalike_warnings(ctx, gallery, person_id, vector)]
    now = utcnow()
    fid = face_id(gallery.name, person_id, prep.sha256)
    face = Face(
        id=fid,
        person_id=person_id,
        gallery=gallery.name,
        image_sha256=prep.sha256,
        image_path=str(ctx.images.save_original(gallery.name, person_id, prep.sha256, prep.image.data)),
        chip_path=str(ctx.images.save_chip(gallery.name, person_id, prep.sha256, prep.chip)),
        box=[float(v) for v in prep.detection.box],
        landmarks=[[float(x), float(y)] for x, y in prep.detection.landmarks],
        detection_score=prep.detection.score,
        quality=quality.to_dict(),
        contract=gallery.contract,
        vector=vector,
        vector_state="pending",
        source_name=name,
        created_at=now,
        updated_at=now,
    )
    return ImageOutcome(name, "enrolled", "", fid, quality.to_dict(), tuple(warnings)), face


def weak_points(quality: FaceQuality) -> str:
    parts = []
    if quality.detection < 0.9:
        parts.append(f"detection score {quality.detection:.2f}")
    if quality.size_px < 60:
        parts.append(f"face {quality.size_px:.0f} px wide")
    if quality.sharpness < 60:
        parts.append("blurred")
    if abs(quality.yaw_deg) > 35 or abs(quality.roll_deg) > 25:
        parts.append(f"turned away (yaw {quality.yaw_deg:.0f}, roll {quality.roll_deg:.0f} degrees)")
    return ", ".join(parts) or "overall"


def lookalike_warnings(ctx: ServiceContext, gallery: Gallery, person_id: str | None, vector: FloatArray) -> list[str]:
    """Warn when the new face matches another person better than its own (a possible duplicate identity)."""
    hits = ctx.index.query(gallery.collection, vector[None, :], 20)[0]
    own = max((h.similarity for h in hits if h.person_id == person_id), default=-1.0)
    others = [h for h in hits if h.person_id != person_id]
    if not others:
        return []
    best = max(others, key=lambda h: h.similarity)
    if best.similarity >= gallery.identify_threshold and best.similarity > own:
        name = names_of(ctx, {best.person_id}).get(best.person_id, best.person_id)
        return [f"looks like {name} (similarity {best.similarity:.2f}), possibly the same person enrolled twice"]
    return []
