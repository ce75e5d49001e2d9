"""Person scores from the index: each candidate person scored from their template and their best face
(model.templates.combined_score, the score `evaluate.py identify` computes exactly over the whole gallery).

Candidates are the persons of the nearest faces and of the nearest templates. The score needs both parts for
each: a template the template search did not return is read by id, and the best face of a person found only by
template is computed from their face records.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.embedders.base import l2_normalise
from model.templates import combined_score
from model.types import FloatArray
from services.context import ServiceContext
from services.storage.records import Gallery, vector_from_bytes
from services.storage.templates import LIVE_STATES, template_collection
from services.storage.vector_index import Hit

# Faces fetched per wanted person: several faces of one person may fill the first places.
FACES_PER_PERSON = 4
# Templates fetched per wanted person: a few more than wanted, so a close second is never missed.
TEMPLATES_PER_PERSON = 2


def best_faces(hits: Sequence[Hit]) -> dict[str, Hit]:
    """The best face of each person among the hits."""
    best: dict[str, Hit] = {}
    for h in hits:
        if h.person_id not in best or h.similarity > best[h.person_id].similarity:
            best[h.person_id] = h
    return best


def ranked(scored: Sequence[Hit], top_k: int) -> list[Hit]:
    return sorted(scored, key=lambda h: -h.similarity)[:top_k]


def person_hits(ctx: ServiceContext, gallery: Gallery, vectors: FloatArray, top_k: int) -> list[list[Hit]]:
    """Top-K persons per query vector; a Hit's similarity is the person's score, its face their best face."""
    face_hits = ctx.index.query(gallery.collection, vectors, top_k * FACES_PER_PERSON)
    weight = ctx.settings.template_weight
    if weight == 0.0:
        return [ranked(list(best_faces(h).values()), top_k) for h in face_hits]
    name = template_collection(gallery.collection)
    template_hits = ctx.index.query(name, vectors, top_k * TEMPLATES_PER_PERSON)
    best = [best_faces(h) for h in face_hits]
    template_sims = [{h.person_id: h.similarity for h in row} for row in template_hits]
    lacking_template = {p for b, t in zip(best, template_sims, strict=True) for p in b if p not in t}
    lacking_face = {p for b, t in zip(best, template_sims, strict=True) for p in t if p not in b}
    templates = ctx.index.vectors(name, sorted(lacking_template))
    faces = _live_faces(ctx, gallery, lacking_face)
    queries = l2_normalise(np.asarray(vectors, dtype=np.float32))
    out = []
    for q, b, t in zip(queries, best, template_sims, strict=True):
        scored = []
        for person in sorted(b.keys() | t.keys()):
            face = b.get(person) or _best_face(faces.get(person), person, q)
            if face is None:
                continue  # a template whose faces are gone: stale until reconcile, never a result
            template = t.get(person)
            if template is None:  # no template stored (a write that died): the best face stands for it
                template = float(templates[person] @ q) if person in templates else face.similarity
            score = float(combined_score(template, face.similarity, weight))
            scored.append(Hit(face.face_id, person, score))
        out.append(ranked(scored, top_k))
    return out


def _live_faces(ctx: ServiceContext, gallery: Gallery, persons: set[str]) -> dict[str, tuple[list[str], FloatArray]]:
    """Each person's live face ids and unit vectors, from MongoDB."""
    if not persons:
        return {}
    # person_id first: SecantusDB plans by the first field; led by `gallery` it scanned every face (0.96 s at
    # 20k faces against 7 ms; measured, docs/scaling.md).
    query = {"person_id": {"$in": sorted(persons)}, "gallery": gallery.name, "vector_state": {"$in": LIVE_STATES}}
    rows: dict[str, list[tuple[str, FloatArray]]] = {}
    for d in ctx.db.faces.find(query, {"person_id": 1, "vector": 1}):
        rows.setdefault(d["person_id"], []).append((d["_id"], vector_from_bytes(d["vector"])))
    return {p: ([i for i, _ in r], l2_normalise(np.stack([v for _, v in r]))) for p, r in rows.items()}


def _best_face(faces: tuple[list[str], FloatArray] | None, person: str, query: FloatArray) -> Hit | None:
    if faces is None:
        return None
    ids, matrix = faces
    sims = matrix @ query
    j = int(np.argmax(sims))
    return Hit(ids[j], person, float(sims[j]))
