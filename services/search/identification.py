"""1:N open-set identification: every face in an image -> Top-K persons, or "unknown"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.errors import FaceregError, error_info
from model.pipeline import FaceEmbedding, ImageSource
from model.types import FloatArray
from services.context import ServiceContext
from services.registry.galleries import check_contract, get_gallery
from services.registry.persons import names_of
from services.search.scoring import person_hits
from services.storage.records import Gallery
from services.storage.vector_index import Hit


@dataclass(frozen=True, slots=True)
class Match:
    person_id: str
    display_name: str
    similarity: float
    face_id: str


@dataclass(frozen=True, slots=True)
class FaceIdentity:
    """One face of the query: its box, its Top-K persons, and the decision."""

    box: list[float]
    quality: float
    matches: list[Match]
    person_id: str | None  # None: unknown
    display_name: str | None
    similarity: float  # of the best match (0 when the gallery is empty)
    threshold: float

    @property
    def is_unknown(self) -> bool:
        return self.person_id is None

    def to_dict(self) -> dict[str, object]:
        return {
            "box": [round(v, 1) for v in self.box],
            "quality": round(self.quality, 3),
            "identity": self.display_name if self.person_id else "unknown",
            "person_id": self.person_id,
            "similarity": round(self.similarity, 4),
            "threshold": self.threshold,
            "matches": [
                {"person_id": m.person_id, "display_name": m.display_name, "similarity": round(m.similarity, 4)}
                for m in self.matches
            ],
        }


def search_vectors(ctx: ServiceContext, gallery: Gallery, vectors: FloatArray, top_k: int = 5) -> list[list[Hit]]:
    """Top-K persons per query vector, each scored from their template and their best face (search/scoring.py)."""
    return person_hits(ctx, gallery, vectors, top_k)


def ranked_matches(ctx: ServiceContext, gallery: Gallery, vectors: FloatArray, top_k: int = 5) -> list[list[Match]]:
    """Top-K persons per query vector, with their names, best first."""
    per_vector = search_vectors(ctx, gallery, vectors, top_k)
    names = names_of(ctx, {h.person_id for hits in per_vector for h in hits})
    return [
        [Match(h.person_id, names.get(h.person_id, "?"), h.similarity, h.face_id) for h in hits] for hits in per_vector
    ]


def decide(ctx: ServiceContext, gallery: Gallery, faces: Sequence[FaceEmbedding], top_k: int = 5) -> list[FaceIdentity]:
    if not faces:
        return []
    per_face = ranked_matches(ctx, gallery, np.stack([f.vector for f in faces]), top_k)
    out = []
    for face, matches in zip(faces, per_face, strict=True):
        best = matches[0] if matches else None
        known = best is not None and best.similarity >= gallery.identify_threshold
        out.append(
            FaceIdentity(
                box=[float(v) for v in face.detection.box],
                quality=face.quality.score,
                matches=matches,
                person_id=best.person_id if known and best else None,
                display_name=best.display_name if known and best else None,
                similarity=best.similarity if best else 0.0,
                threshold=gallery.identify_threshold,
            )
        )
    return out


def identify_image(
    ctx: ServiceContext, image: ImageSource, gallery_name: str | None = None, top_k: int = 5
) -> list[FaceIdentity]:
    """Every face in the image identified against the gallery (open-set)."""
    gallery = get_gallery(ctx, gallery_name or ctx.settings.gallery)
    check_contract(gallery, ctx.pipeline)
    return decide(ctx, gallery, ctx.pipeline.embed_all(image), top_k)


def rank_primary_faces(
    ctx: ServiceContext, images: Sequence[tuple[str, bytes]], gallery_name: str | None = None, top_k: int = 5
) -> list[dict[str, object]]:
    """For each named image, its primary face's Top-K persons as [external id (or id), similarity]; an image
    without a usable face has an `error` ({"code", "message"}) instead."""
    gallery = get_gallery(ctx, gallery_name or ctx.settings.gallery)
    check_contract(gallery, ctx.pipeline)
    results = ctx.pipeline.embed_primary_many([data for _, data in images])
    ok = [(name, r) for (name, _), r in zip(images, results, strict=True) if not isinstance(r, FaceregError)]
    out: list[dict[str, object]] = [
        {"name": name, "error": error_info(r).to_dict(), "ranked": []}
        for (name, _), r in zip(images, results, strict=True)
        if isinstance(r, FaceregError)
    ]
    if not ok:
        return out
    hits = search_vectors(ctx, gallery, np.stack([r.vector for _, r in ok]), top_k)
    persons = {h.person_id for row in hits for h in row}
    keys = {
        d["_id"]: d.get("external_id") or d["_id"]
        for d in ctx.db.persons.find({"_id": {"$in": list(persons)}}, {"external_id": 1})
    }
    for (name, _), row in zip(ok, hits, strict=True):
        out.append(
            {
                "name": name,
                "error": None,
                "ranked": [[keys.get(h.person_id, h.person_id), round(h.similarity, 5)] for h in row],
            }
        )
    return out
