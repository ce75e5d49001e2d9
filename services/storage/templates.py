"""Person templates in the vector index, beside the face vectors (model/templates.py says what one is).

Each gallery collection has a sibling collection of templates: id = person id, one vector each. A template is a
projection of the person's face records in MongoDB, recomputed whole after every face write or delete; a write
that died between the faces and the template leaves a stale one, which `consistency.reconcile` repairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from model.templates import templates_of
from model.types import FloatArray
from services.storage.records import Gallery, vector_from_bytes

if TYPE_CHECKING:  # the context is built from storage: storage names it for types only
    from services.context import ServiceContext

SUFFIX = "-templates"
# Faces whose vectors count: stored, or stored and projected (a `deleting` face is on its way out).
LIVE_STATES = ["pending", "indexed"]


def template_collection(face_collection: str) -> str:
    """The templates' collection of a face collection (a valid Chroma name when the face collection's is)."""
    return face_collection + SUFFIX


@dataclass(frozen=True, slots=True)
class Templates:
    """Templates computed from MongoDB: person id -> unit vector; persons without a live face are absent."""

    vectors: dict[str, FloatArray]

    @classmethod
    def from_docs(cls, docs: Iterable[Mapping[str, Any]], vector_field: str = "vector") -> Templates:
        rows = list(docs)
        if not rows:
            return cls({})
        persons, templates = templates_of(
            np.stack([vector_from_bytes(d[vector_field]) for d in rows]),
            [d["person_id"] for d in rows],
            [float((d.get("quality") or {}).get("score", 0.0)) for d in rows],
        )
        return cls(dict(zip(persons, templates, strict=True)))


def compute_templates(
    ctx: ServiceContext, gallery: str, person_ids: Iterable[str] | None = None, vector_field: str = "vector"
) -> Templates:
    """The templates the records say the persons should have (all the gallery's persons when None)."""
    # A face enrolled during a reindex has no `next_vector` yet: it joins the new templates through its own write.
    query: dict[str, Any] = {}
    if person_ids is not None:  # first: SecantusDB plans by the first field (services.search.scoring._live_faces)
        query["person_id"] = {"$in": sorted(set(person_ids))}
    query |= {"gallery": gallery, "vector_state": {"$in": LIVE_STATES}, vector_field: {"$exists": True}}
    fields = {"person_id": 1, "quality": 1, vector_field: 1}
    return Templates.from_docs(ctx.db.faces.find(query, fields), vector_field)


def write_templates(ctx: ServiceContext, collection: str, person_ids: Iterable[str], templates: Templates) -> None:
    """Make the stored templates of `person_ids` those given: upsert the present ones, delete the others."""
    wanted = sorted(set(person_ids))
    present = [p for p in wanted if p in templates.vectors]
    gone = [p for p in wanted if p not in templates.vectors]
    name = template_collection(collection)
    if present:
        ctx.index.upsert(name, present, np.stack([templates.vectors[p] for p in present]), present)
    ctx.index.delete(name, gone)


def refresh_templates(ctx: ServiceContext, gallery: Gallery, person_ids: Iterable[str]) -> None:
    """Recompute and store the templates of these persons from their live faces (idempotent)."""
    persons = sorted(set(person_ids))
    if persons:
        write_templates(ctx, gallery.collection, persons, compute_templates(ctx, gallery.name, persons))
