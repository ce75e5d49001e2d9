"""Keeping ChromaDB a faithful projection of MongoDB: reconcile, reindex with another model, and rebuild the index
with other HNSW settings."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from model.image_io import load_image
from model.pipeline import FacePipeline
from model.types import Detection
from services.context import ServiceContext, hnsw_params
from services.errors import ServiceError
from services.registry.galleries import default_thresholds, get_gallery
from services.storage.audit import audit
from services.storage.face_writes import delete_faces, project
from services.storage.records import Face, Gallery, utcnow, vector_from_bytes, vector_to_bytes
from services.storage.templates import compute_templates, template_collection, write_templates
from services.storage.vector_index import MAX_BATCH, collection_name

BATCH = 256


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    gallery: str
    faces: int
    vectors_before: int
    orphan_vectors_deleted: int
    pending_projected: int
    missing_vectors_restored: int
    deletions_finished: int
    vectors_after: int
    templates_repaired: int = 0

    @property
    def repaired(self) -> int:
        return (
            self.orphan_vectors_deleted
            + self.pending_projected
            + self.missing_vectors_restored
            + self.deletions_finished
            + self.templates_repaired
        )

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "repaired": self.repaired}


def reconcile(ctx: ServiceContext, gallery_name: str) -> ReconcileReport:
    """Find and repair every difference between the gallery's records and its vectors."""
    gallery = get_gallery(ctx, gallery_name)
    if gallery.reindexing_to is None:
        _adopt_new_vectors(ctx, gallery.name, gallery.contract)  # a reindex that crashed after its switch
    docs = list(ctx.db.faces.find({"gallery": gallery.name}))
    vector_ids = ctx.index.ids(gallery.collection)
    deleting = [Face.from_doc(d) for d in docs if d["vector_state"] == "deleting"]
    pending = [Face.from_doc(d) for d in docs if d["vector_state"] == "pending"]
    missing = [Face.from_doc(d) for d in docs if d["vector_state"] == "indexed" and d["_id"] not in vector_ids]
    live_ids = {d["_id"] for d in docs if d["vector_state"] != "deleting"}
    orphans = sorted(vector_ids - live_ids - {f.id for f in deleting})
    delete_faces(ctx, gallery, deleting)
    ctx.index.delete(gallery.collection, orphans)
    for start in range(0, len(pending) + len(missing), BATCH):
        project(ctx, gallery, (pending + missing)[start : start + BATCH])
    templates = repair_templates(ctx, gallery)
    report = ReconcileReport(
        gallery=gallery.name,
        faces=len(live_ids),
        vectors_before=len(vector_ids),
        orphan_vectors_deleted=len(orphans),
        pending_projected=len(pending),
        missing_vectors_restored=len(missing),
        deletions_finished=len(deleting),
        vectors_after=ctx.index.count(gallery.collection),
        templates_repaired=templates,
    )
    if report.repaired:
        audit(ctx, "system", "gallery.reconcile", gallery.name, report.to_dict())
    return report


def reindex(ctx: ServiceContext, gallery_name: str, pipeline: FacePipeline, actor: str = "system") -> dict[str, object]:
    """Re-embed every face of the gallery with `pipeline` into a new collection, then switch atomically.

    The stored originals are re-aligned with the new model's own alignment from the recorded
    landmarks, so no detection runs again. Thresholds reset to the new model's defaults. On the gallery's own
    contract: `rebuild_index` (the HNSW settings applied, nothing re-embedded).
    """
    gallery = get_gallery(ctx, gallery_name)
    new = pipeline.contract
    if new.id == gallery.contract:
        return rebuild_index(ctx, gallery_name, actor)
    target = _claim(ctx, gallery, new.id, collection_name(gallery.name, new.id))
    faces = [
        Face.from_doc(d) for d in ctx.db.faces.find({"gallery": gallery.name, "vector_state": {"$ne": "deleting"}})
    ]
    for start in tqdm(range(0, len(faces), BATCH), desc="reindex", unit="batch"):
        _reembed(ctx, pipeline, target, faces[start : start + BATCH])
    persons = {f.person_id for f in faces}
    write_templates(ctx, target, persons, compute_templates(ctx, gallery.name, persons, "next_vector"))
    verify, identify = default_thresholds(ctx, pipeline)
    switched = Gallery(
        gallery.name, new.id, new.model, new.dim, target, verify, identify, gallery.created_at, utcnow(), None, None
    )
    ctx.db.galleries.replace_one({"_id": gallery.name}, switched.to_doc())
    _adopt_new_vectors(ctx, gallery.name, new.id)
    _switched(ctx, gallery, target)
    audit(ctx, actor, "gallery.reindex", gallery.name, {"from": gallery.contract, "to": new.id, "faces": len(faces)})
    return {"gallery": gallery.name, "from": gallery.contract, "contract": new.id, "reindexed": len(faces)}


def rebuild_index(ctx: ServiceContext, gallery_name: str, actor: str = "system") -> dict[str, object]:
    """Build the gallery's collection again with the settings' HNSW parameters (FACEREG_HNSW_*), from the vectors in
    MongoDB (nothing is re-embedded), then switch atomically; nothing to do when it has them already."""
    gallery = get_gallery(ctx, gallery_name)
    wanted = hnsw_params(ctx.settings)
    built = ctx.index.hnsw(gallery.collection)
    out: dict[str, object] = {"gallery": gallery.name, "contract": gallery.contract, "hnsw": asdict(wanted)}
    if built is None or built == wanted:
        return {**out, "rebuilt": 0, "note": "already on this contract and these HNSW settings"}
    suffix = f"m{wanted.max_neighbors}-c{wanted.ef_construction}-s{wanted.ef_search}"
    target = _claim(ctx, gallery, gallery.contract, collection_name(gallery.name, gallery.contract, suffix))
    query = {"gallery": gallery.name, "vector_state": {"$ne": "deleting"}, "vector": {"$exists": True}}
    rows = ctx.db.faces.find(query, {"person_id": 1, "vector": 1}).batch_size(MAX_BATCH)
    copied, persons = 0, set[str]()
    with tqdm(desc="rebuild index", unit="face") as progress:
        while batch := list(itertools.islice(rows, MAX_BATCH)):
            vectors = np.stack([vector_from_bytes(d["vector"]) for d in batch])
            ctx.index.upsert(target, [d["_id"] for d in batch], vectors, [d["person_id"] for d in batch])
            persons.update(d["person_id"] for d in batch)
            copied += len(batch)
            progress.update(len(batch))
    write_templates(ctx, target, persons, compute_templates(ctx, gallery.name, persons))
    ctx.db.galleries.update_one(
        {"_id": gallery.name},
        {
            "$set": {"collection": target, "updated_at": utcnow()},
            "$unset": {"reindexing_to": "", "reindexing_into": ""},
        },
    )
    _switched(ctx, gallery, target)
    audit(ctx, actor, "gallery.rebuild_index", gallery.name, {"faces": copied, "hnsw": asdict(wanted)})
    return {**out, "from_hnsw": asdict(built), "rebuilt": copied}


def _claim(ctx: ServiceContext, gallery: Gallery, contract: str, target: str) -> str:
    """Mark the gallery as being re-indexed into `target` (enrollment waits, erasure deletes there too) and clear
    what a crashed earlier attempt left in it; `target`."""
    claimed = ctx.db.galleries.update_one(
        {"_id": gallery.name, "reindexing_to": {"$in": [None, contract]}},
        {"$set": {"reindexing_to": contract, "reindexing_into": target}},
    )
    if claimed.matched_count == 0:
        raise ServiceError(f"gallery {gallery.name!r} is already being re-indexed to another model")
    _drop_collections(ctx, target)
    return target


def _switched(ctx: ServiceContext, old: Gallery, target: str) -> None:
    """After the switch: the old collections dropped, and any face erased while `target` was filled swept out."""
    _drop_collections(ctx, old.collection)
    live = {d["_id"] for d in ctx.db.faces.find({"gallery": old.name, "vector_state": {"$ne": "deleting"}}, {"_id": 1})}
    ctx.index.delete(target, sorted(ctx.index.ids(target) - live))


def repair_templates(ctx: ServiceContext, gallery: Gallery) -> int:
    """Make every stored template of the gallery what its face records say; the number of templates changed."""
    wanted = compute_templates(ctx, gallery.name)
    name = template_collection(gallery.collection)
    stored = ctx.index.vectors(name, sorted(wanted.vectors))
    stale = [p for p, v in wanted.vectors.items() if p not in stored or not np.allclose(stored[p], v, atol=1e-5)]
    orphans = ctx.index.ids(name) - set(wanted.vectors)
    write_templates(ctx, gallery.collection, [*stale, *orphans], wanted)
    return len(stale) + len(orphans)


def _drop_collections(ctx: ServiceContext, collection: str) -> None:
    """A face collection and its templates."""
    ctx.index.drop(collection)
    ctx.index.drop(template_collection(collection))


def _reembed(ctx: ServiceContext, pipeline: FacePipeline, target: str, faces: list[Face]) -> None:
    """The faces' stored originals embedded again from their recorded detections (read one at a time)."""
    embedded = pipeline.embed_faces((load_image(f.image_path), _recorded_detection(f)) for f in faces)
    vectors = np.stack([e.vector for e in embedded])
    for f, v in zip(faces, vectors, strict=True):
        ctx.db.faces.update_one({"_id": f.id}, {"$set": {"next_vector": vector_to_bytes(v)}})
    ctx.index.upsert(target, [f.id for f in faces], vectors, [f.person_id for f in faces])


def _recorded_detection(face: Face) -> Detection:
    return Detection(np.asarray(face.box, np.float32), np.asarray(face.landmarks, np.float32), face.detection_score)


def _adopt_new_vectors(ctx: ServiceContext, gallery: str, contract: str) -> None:
    """After the switch, each record's vector becomes the one computed for the new contract."""
    query = {"gallery": gallery, "next_vector": {"$exists": True}, "contract": {"$ne": contract}}
    for doc in ctx.db.faces.find(query, {"next_vector": 1}):
        ctx.db.faces.update_one(
            {"_id": doc["_id"]},
            {
                "$set": {"vector": doc["next_vector"], "contract": contract, "vector_state": "indexed"},
                "$unset": {"next_vector": ""},
            },
        )
