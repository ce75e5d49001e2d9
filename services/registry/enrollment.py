"""Enrollment: a person and their photos -> quality-gated, embedded, stored and indexed faces."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from model.detection import primary_face
from model.errors import FaceregError, LowQuality, MultipleFaces, NoFace, error_info
from model.pipeline import FaceEmbedding
from model.quality import FaceQuality
from model.types import Detection, FloatArray, ImageArray
from services.context import ServiceContext
from services.errors import DuplicatePhoto, ServiceError
from services.registry.galleries import ensure_gallery
from services.registry.persons import PersonInput, create_or_get_person, existing_person, names_of, requested_name
from services.storage.face_writes import face_id, project, write_faces
from services.storage.faults import crash_point
from services.storage.records import Face, Gallery, Person, utcnow

Status = Literal["enrolled", "already_enrolled", "rejected"]


@dataclass(frozen=True, slots=True)
class ImageInput:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    """One image's outcome: `reason` tells people why it was not enrolled now; `code` is a rejection's error code."""

    name: str
    status: Status
    reason: str = ""
    face_id: str | None = None
    quality: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()
    code: str | None = None


@dataclass(frozen=True, slots=True)
class EnrollmentResult:
    person_id: str | None  # None: the person does not exist, since none of these photos could be stored
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
            "images": [{**asdict(o), "warnings": list(o.warnings)} for o in self.outcomes],
        }


DuplicatePhotos = Literal["warn", "refuse"]


@dataclass(frozen=True, slots=True)
class EnrollOptions:
    """Per-call policy; defaults come from the settings."""

    multi_face: Literal["error", "largest"]
    min_quality: float
    # A photo already enrolled for another person (same image bytes): enrolled with a warning, or refused.
    duplicate_photos: DuplicatePhotos = "warn"

    @classmethod
    def from_settings(cls, ctx: ServiceContext) -> EnrollOptions:
        return cls(ctx.settings.enroll_multi_face, ctx.settings.enroll_min_quality)


def rejection(name: str, exc: FaceregError, quality: dict[str, float] | None = None) -> ImageOutcome:
    """An image refused for `exc`: its message as the reason, its code beside it."""
    info = error_info(exc)
    return ImageOutcome(name, "rejected", info.message, quality=quality, code=info.code)


@dataclass(slots=True)
class _Prepared:
    image: ImageInput
    sha256: str
    pixels: ImageArray
    detection: Detection
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class _Accepted:
    """A photo that passed every check: stored once its person exists."""

    prep: _Prepared
    face: FaceEmbedding
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnrollRequest:
    person: PersonInput
    images: Sequence[ImageInput]
    # Images refused before they could be read (unreadable, outside the input roots): reported after the others.
    refused: Sequence[ImageOutcome] = ()


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
    """Several persons at once: the faces of all their images are embedded in one batch.

    A person record is created only for a request with at least one photo to store, just before its faces
    are written: refused input leaves no record. A crash in between leaves a person without faces, whom a
    re-run with the same external id finds and completes."""
    opts = options or EnrollOptions.from_settings(ctx)
    batch = _open_batch(ctx, requests, gallery_name)
    accepted = _embed_and_gate(ctx, batch, _prepare_all(ctx, batch, opts), opts.min_quality)
    persons = _store(ctx, batch, accepted, actor)
    return [
        EnrollmentResult(
            person.id if person else None,
            person.display_name if person else batch.names[p],
            batch.gallery.name,
            created,
            [*(batch.outcomes[(p, i)] for i in range(len(req.images))), *req.refused],
        )
        for p, (req, (person, created)) in enumerate(zip(requests, persons, strict=True))
    ]


ImageKey = tuple[int, int]  # (request, image) within one enroll_many call


@dataclass(slots=True)
class _Batch:
    """One enroll_many call: its gallery, each request's existing person (or None) and name, and the outcome of
    each image decided so far."""

    gallery: Gallery
    requests: Sequence[EnrollRequest]
    known: list[Person | None]
    names: list[str]
    outcomes: dict[ImageKey, ImageOutcome] = field(default_factory=dict)


def _open_batch(ctx: ServiceContext, requests: Sequence[EnrollRequest], gallery_name: str | None) -> _Batch:
    gallery = ensure_gallery(ctx, gallery_name or ctx.settings.gallery)
    if gallery.reindexing_to is not None:
        raise ServiceError(f"gallery {gallery.name!r} is being re-indexed; enroll when that finishes")
    known = [existing_person(ctx, r.person) for r in requests]
    names = [k.display_name if k else requested_name(r.person) for r, k in zip(requests, known, strict=True)]
    return _Batch(gallery, requests, known, names)


def _prepare_all(ctx: ServiceContext, batch: _Batch, opts: EnrollOptions) -> list[tuple[ImageKey, _Prepared]]:
    """Each image decoded and its face chosen; one sent twice, enrolled before or refused gets its outcome."""
    prepared: list[tuple[ImageKey, _Prepared]] = []
    first_owner: dict[str, int] = {}  # image sha256 -> the request of this batch that has it first
    seen: set[tuple[int, str]] = set()  # (request, sha256): one face per photo and person, even if sent twice
    for p, (req, person) in enumerate(zip(batch.requests, batch.known, strict=True)):
        for i, img in enumerate(req.images):
            sha = hashlib.sha256(img.data).hexdigest()
            if (p, sha) in seen:
                reason = "the same image is earlier in this request"
                batch.outcomes[(p, i)] = ImageOutcome(img.name, "already_enrolled", reason)
                continue
            seen.add((p, sha))
            try:
                done = _already_enrolled(ctx, batch.gallery, person, img.name, sha)
                if done is not None:
                    batch.outcomes[(p, i)] = done
                    continue
                owner = first_owner.get(sha, p)
                in_batch = batch.names[owner] if owner != p else None
                warnings = _duplicate_warnings(ctx, batch.gallery, person, sha, opts, in_batch)
                prepared.append(((p, i), _prepare(ctx, img, sha, opts, warnings)))
                first_owner.setdefault(sha, p)
            except FaceregError as exc:
                batch.outcomes[(p, i)] = rejection(img.name, exc)
    return prepared


def _embed_and_gate(
    ctx: ServiceContext, batch: _Batch, prepared: list[tuple[ImageKey, _Prepared]], min_quality: float
) -> dict[ImageKey, _Accepted]:
    """The prepared faces embedded in one batch and gated: the accepted ones; the others get their outcome."""
    embedded = ctx.pipeline.embed_faces((prep.pixels, prep.detection) for _, prep in prepared)
    accepted: dict[ImageKey, _Accepted] = {}
    for (key, prep), emb in zip(prepared, embedded, strict=True):
        person = batch.known[key[0]]
        gated = _gate(ctx, batch.gallery, person.id if person else None, prep, emb, min_quality)
        if isinstance(gated, _Accepted):
            accepted[key] = gated
        else:
            batch.outcomes[key] = gated
    return accepted


def _store(
    ctx: ServiceContext, batch: _Batch, accepted: dict[ImageKey, _Accepted], actor: str
) -> list[tuple[Person | None, bool]]:
    """The accepted faces written under their persons (created now where needed), each one's outcome set; each
    request's person and whether it was created now."""
    persons = _persons_to_store(ctx, batch.requests, batch.known, {p for p, _ in accepted}, actor)
    stored = {p: person.id for p, (person, _) in enumerate(persons) if person is not None}
    faces: list[Face] = []
    for key, ok in accepted.items():
        face = _face(ctx, batch.gallery, stored[key[0]], ok)
        faces.append(face)
        batch.outcomes[key] = ImageOutcome(ok.prep.image.name, "enrolled", "", face.id, face.quality, ok.warnings)
    crash_point("after_person_insert")
    write_faces(ctx, batch.gallery, faces)
    return persons


def _persons_to_store(
    ctx: ServiceContext, requests: Sequence[EnrollRequest], known: list[Person | None], storing: set[int], actor: str
) -> list[tuple[Person | None, bool]]:
    """Each request's person: the existing one, one created now (it has a face to store), or None."""
    out: list[tuple[Person | None, bool]] = []
    for p, (req, person) in enumerate(zip(requests, known, strict=True)):
        if person is None and p in storing:
            out.append(create_or_get_person(ctx, req.person, actor))
        else:
            out.append((person, False))
    return out


def _already_enrolled(
    ctx: ServiceContext, gallery: Gallery, person: Person | None, name: str, sha: str
) -> ImageOutcome | None:
    """The outcome of an image already enrolled for this person (an interrupted enrollment is finished)."""
    if person is None:
        return None
    doc = ctx.db.faces.find_one({"gallery": gallery.name, "person_id": person.id, "image_sha256": sha})
    if doc is None:
        return None
    existing = Face.from_doc(doc)
    if existing.vector_state == "pending":
        project(ctx, gallery, [existing])  # finish an interrupted earlier enrollment
    reason = "this image is already enrolled for this person"
    return ImageOutcome(name, "already_enrolled", reason, face_id=existing.id)


def _duplicate_warnings(
    ctx: ServiceContext,
    gallery: Gallery,
    person: Person | None,
    sha: str,
    opts: EnrollOptions,
    owner_in_batch: str | None,
) -> list[str]:
    """The same photo already enrolled for another person (or earlier in this batch): a warning, or refused."""
    owner = owner_in_batch or photo_owner(ctx, gallery.name, sha, person.id if person else None)
    if owner is None:
        return []
    if opts.duplicate_photos == "refuse":
        raise DuplicatePhoto(f"already enrolled for {owner}")
    return [f"the same photo is already enrolled for {owner}"]


def photo_owner(ctx: ServiceContext, gallery: str, sha256: str, person_id: str | None) -> str | None:
    """The name of another person of the gallery who has this photo (same image bytes), if any."""
    query: dict[str, Any] = {"gallery": gallery, "image_sha256": sha256}
    if person_id is not None:
        query["person_id"] = {"$ne": person_id}
    doc = ctx.db.faces.find_one(query, {"person_id": 1})
    if doc is None:
        return None
    return names_of(ctx, {doc["person_id"]}).get(doc["person_id"], doc["person_id"])


def _prepare(ctx: ServiceContext, img: ImageInput, sha: str, opts: EnrollOptions, notes: list[str]) -> _Prepared:
    """Decoded and its face chosen; `notes` (warnings found before) follow the detector's own warnings."""
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
    return _Prepared(img, sha, pixels, detection, [*warnings, *notes])


def _gate(
    ctx: ServiceContext,
    gallery: Gallery,
    person_id: str | None,
    prep: _Prepared,
    face: FaceEmbedding,
    min_quality: float,
) -> ImageOutcome | _Accepted:
    """The quality gate and the duplicate-identity check: a rejection, or the photo accepted."""
    quality = face.quality
    name = prep.image.name
    if prep.detection.fallback:
        return rejection(name, NoFace("no face found in the photo"))
    if quality.score < min_quality:
        low = LowQuality(f"quality {quality.score:.2f} is under {min_quality:.2f} ({weak_points(quality)})")
        return rejection(name, low, quality.to_dict())
    warnings = (*prep.warnings, *lookalike_warnings(ctx, gallery, person_id, face.vector))
    return _Accepted(prep, face, warnings)


def _face(ctx: ServiceContext, gallery: Gallery, person_id: str, ok: _Accepted) -> Face:
    """The face record of an accepted photo, its original and aligned chip stored under the person."""
    prep, now = ok.prep, utcnow()
    return Face(
        id=face_id(gallery.name, person_id, prep.sha256),
        person_id=person_id,
        gallery=gallery.name,
        image_sha256=prep.sha256,
        image_path=str(ctx.images.save_original(gallery.name, person_id, prep.sha256, prep.image.data)),
        chip_path=str(ctx.images.save_chip(gallery.name, person_id, prep.sha256, ok.face.chip)),
        box=[float(v) for v in prep.detection.box],
        landmarks=[[float(x), float(y)] for x, y in prep.detection.landmarks],
        detection_score=prep.detection.score,
        quality=ok.face.quality.to_dict(),
        contract=gallery.contract,
        vector=ok.face.vector,
        vector_state="pending",
        source_name=prep.image.name,
        created_at=now,
        updated_at=now,
    )


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
