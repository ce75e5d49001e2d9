"""The one way a face vector is written: Mongo `pending` -> Chroma upsert -> Mongo `indexed`.

A crash between any two steps leaves a state that `consistency.reconcile` repairs: a pending
record (with its vector, since MongoDB keeps it) is re-projected into Chroma. The persons' templates
(storage/templates.py) are recomputed last, after the faces are written or deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from services.storage.faults import crash_point
from services.storage.records import Face, Gallery, utcnow
from services.storage.templates import refresh_templates

if TYPE_CHECKING:  # the context is built from storage: storage names it for types only
    from services.context import ServiceContext


def face_id(gallery: str, person_id: str, image_sha256: str) -> str:
    """Deterministic: the same image enrolled for the same person in the same gallery is the same face."""
    return hashlib.sha256(f"{gallery}\0{person_id}\0{image_sha256}".encode()).hexdigest()[:24]


def write_faces(ctx: ServiceContext, gallery: Gallery, faces: Sequence[Face]) -> None:
    """Store new faces and project them into the gallery's collection (idempotent per face id)."""
    if not faces:
        return
    for face in faces:
        # $setOnInsert: a retried write never overwrites the first record of the same face.
        ctx.db.faces.update_one({"_id": face.id}, {"$setOnInsert": face.to_doc()}, upsert=True)
    crash_point("after_mongo_pending")
    project(ctx, gallery, list(faces))


def project(ctx: ServiceContext, gallery: Gallery, faces: Sequence[Face]) -> None:
    """Upsert the faces' vectors into Chroma, mark them indexed, then renew their persons' templates."""
    ctx.index.upsert(
        gallery.collection, [f.id for f in faces], np.stack([f.vector for f in faces]), [f.person_id for f in faces]
    )
    crash_point("after_chroma_upsert")
    ctx.db.faces.update_many(
        {"_id": {"$in": [f.id for f in faces]}},
        {"$set": {"vector_state": "indexed", "updated_at": utcnow()}},
    )
    crash_point("after_mongo_indexed")
    refresh_templates(ctx, gallery, {f.person_id for f in faces})


def delete_faces(ctx: ServiceContext, gallery: Gallery, faces: Sequence[Face]) -> None:
    """Mark `deleting`, drop the vectors, then the records and files; reconcile finishes a crashed delete."""
    ids = [f.id for f in faces]
    if not ids:
        return
    ctx.db.faces.update_many({"_id": {"$in": ids}}, {"$set": {"vector_state": "deleting", "updated_at": utcnow()}})
    crash_point("after_mongo_deleting")
    ctx.index.delete(gallery.collection, ids)
    if gallery.reindexing_into:  # a running reindex may have copied them already (it sweeps after its switch too)
        ctx.index.delete(gallery.reindexing_into, ids)
    crash_point("after_chroma_delete")
    ctx.db.faces.delete_many({"_id": {"$in": ids}})
    for f in faces:
        ctx.images.delete_face(f.image_path, f.chip_path)
    crash_point("after_mongo_delete")
    refresh_templates(ctx, gallery, {f.person_id for f in faces})
