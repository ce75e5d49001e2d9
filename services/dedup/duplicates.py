"""Duplicates: (a) near-identical images, grouped, keep-best with a quarantine; (b) pairs of different
persons whose faces match, queued for a human decision that is kept and respected afterwards."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from model.errors import ErrorInfo, FaceregError, error_info
from model.image_hash import mirror_distance, mirror_hashes
from model.image_io import IMAGE_SUFFIXES, load_image
from model.pipeline import FacePipeline
from model.types import FloatArray, ImageArray
from services.context import ServiceContext
from services.errors import ServiceError
from services.registry.erasure import erase_person
from services.registry.galleries import get_gallery
from services.registry.persons import names_of
from services.search.verification import checked_similarity
from services.storage.audit import audit
from services.storage.face_writes import delete_faces, project
from services.storage.private_files import FILE_MODE, open_private_log, private_mkdir
from services.storage.records import Face, Review, ReviewStatus, utcnow
from services.storage.templates import refresh_templates

# Two images whose 64-bit hashes (mirror-aware) differ in at most this many bits are the same photo.
# Measured on LFW: resized, JPEG-30 and mirrored copies differ by <= 2 bits; LFW's own duplicate
# photos by 0-2; two frames of one press conference by 4; other photos of one person by >= 6.
HASH_DISTANCE = 3
# Embedding similarity that makes two images candidates; the hash decides. Mirrored copies of
# LFW photos reach only ~0.85 (the re-detected landmarks move), so the bar is low.
IMAGE_DUP_SIMILARITY = 0.7


@dataclass(frozen=True, slots=True)
class DupItem:
    key: str  # a file path (folder scan) or a face id (gallery scan)
    vector: FloatArray
    hashes: tuple[int, int]
    quality: float


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    keys: list[str]
    best: str  # the highest-quality member
    min_similarity: float
    max_hash_distance: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "best": self.best,
            "min_similarity": round(self.min_similarity, 4),
            "max_hash_distance": self.max_hash_distance,
        }


def group_duplicates(
    items: Sequence[DupItem], similarity: float = IMAGE_DUP_SIMILARITY, hash_distance: int = HASH_DISTANCE
) -> list[DuplicateGroup]:
    """Connected components of "same photo" pairs: similar faces *and* near-equal image hashes."""
    if len(items) < 2:
        return []
    vectors = np.stack([it.vector for it in items])
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges: list[tuple[int, int, float, int]] = []
    for i in range(len(items)):
        sims = vectors[i + 1 :] @ vectors[i]
        for off in np.flatnonzero(sims >= similarity):
            j = i + 1 + int(off)
            dist = mirror_distance(items[i].hashes, items[j].hashes)
            if dist <= hash_distance:
                edges.append((i, j, float(sims[off]), dist))
                parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(len(items)):
        members.setdefault(root(i), []).append(i)
    groups = []
    for idx in members.values():
        if len(idx) < 2:
            continue
        inside = [e for e in edges if e[0] in idx]
        best = max(idx, key=lambda i: items[i].quality)
        groups.append(
            DuplicateGroup(
                sorted(items[i].key for i in idx), items[best].key, min(e[2] for e in inside), max(e[3] for e in inside)
            )
        )
    return sorted(groups, key=lambda g: g.keys[0])


def folder_items(pipeline: FacePipeline, folder: Path) -> tuple[list[DupItem], dict[str, ErrorInfo]]:
    """Embed and hash every image under `folder`; failures are returned, not raised."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    items: list[DupItem] = []
    failures: dict[str, ErrorInfo] = {}
    for start in tqdm(range(0, len(paths), 64), desc="dedup scan", unit="batch"):
        loaded: list[tuple[Path, ImageArray]] = []
        for path in paths[start : start + 64]:
            try:
                loaded.append((path, pipeline.load(path)))
            except FaceregError as exc:
                failures[str(path)] = error_info(exc)
        for (path, pixels), res in zip(loaded, pipeline.embed_primary_many([px for _, px in loaded]), strict=True):
            if isinstance(res, FaceregError):
                failures[str(path)] = error_info(res)
            else:
                items.append(DupItem(str(path), res.vector, mirror_hashes(pixels), res.quality.score))
    return items, failures


def find_folder_duplicates(
    pipeline: FacePipeline, folder: Path, similarity: float = IMAGE_DUP_SIMILARITY
) -> tuple[list[DuplicateGroup], dict[str, ErrorInfo]]:
    similarity = checked_similarity(similarity, "similarity")
    if not folder.is_dir():
        raise ServiceError(f"{folder} is not a folder")
    items, failures = folder_items(pipeline, folder)
    return group_duplicates(items, similarity), failures


def gallery_items(ctx: ServiceContext, gallery: str) -> list[DupItem]:
    items = []
    for doc in ctx.db.faces.find({"gallery": gallery, "vector_state": "indexed"}):
        face = Face.from_doc(doc)
        try:
            pixels = load_image(face.image_path)
        except FaceregError:
            continue  # a missing stored image is reconcile's business, not dedup's
        items.append(DupItem(face.id, face.vector, mirror_hashes(pixels), float(face.quality["score"])))
    return items


def find_gallery_duplicates(
    ctx: ServiceContext, gallery: str, similarity: float = IMAGE_DUP_SIMILARITY
) -> list[DuplicateGroup]:
    similarity = checked_similarity(similarity, "similarity")
    get_gallery(ctx, gallery)
    return group_duplicates(gallery_items(ctx, gallery), similarity)


def resolve_folder_duplicates(groups: Sequence[DuplicateGroup], quarantine: Path) -> list[dict[str, str]]:
    """keep="best": every other member moves to `quarantine` (never deleted); a manifest records each move."""
    moved: list[dict[str, str]] = []
    private_mkdir(quarantine)  # face photos: 0700 folders, 0600 files
    with open_private_log(quarantine / "manifest.jsonl") as manifest:
        for g in groups:
            for key in g.keys:
                if key == g.best:
                    continue
                src = Path(key)
                dest = quarantine / f"{len(moved):05d}_{src.name}"
                shutil.move(str(src), dest)
                if not dest.is_symlink():  # never change a link's target (a dataset elsewhere)
                    dest.chmod(FILE_MODE)
                entry = {"from": str(src), "to": str(dest), "kept": g.best, "time": utcnow().isoformat()}
                manifest.write((json.dumps(entry) + "\n").encode())
                moved.append(entry)
    return moved


def resolve_gallery_duplicates(
    ctx: ServiceContext, gallery_name: str, groups: Sequence[DuplicateGroup], actor: str = "system"
) -> int:
    """keep="best" in a gallery: the other faces leave the index, their originals go to the quarantine."""
    gallery = get_gallery(ctx, gallery_name)
    quarantine = ctx.settings.data_dir / "quarantine" / gallery.name
    drop = [
        Face.from_doc(d)
        for g in groups
        for d in ctx.db.faces.find({"_id": {"$in": [k for k in g.keys if k != g.best]}})
    ]
    private_mkdir(quarantine)
    for f in drop:
        if Path(f.image_path).is_file():
            dest = quarantine / f"{f.id}{Path(f.image_path).suffix}"
            shutil.copy2(f.image_path, dest)
            dest.chmod(FILE_MODE)
    delete_faces(ctx, gallery, drop)
    audit(ctx, actor, "dedup.keep_best", gallery.name, {"removed_faces": [f.id for f in drop]})
    return len(drop)


# (b) Different persons whose faces match: a review queue.

Decision = Literal["merge", "keep_separate", "remove_face"]
DECIDED: dict[Decision, ReviewStatus] = {
    "merge": "merged",
    "keep_separate": "kept_separate",
    "remove_face": "face_removed",
}


def review_id(gallery: str, a: str, b: str) -> str:
    lo, hi = sorted((a, b))
    return f"{gallery}:{lo}:{hi}"


def scan_identity_candidates(
    ctx: ServiceContext, gallery_name: str, threshold: float | None = None, k: int = 10
) -> int:
    """Queue every pair of persons with faces matching above the threshold; decided pairs stay decided.

    Returns the number of pairs newly queued.
    """
    given = None if threshold is None else checked_similarity(threshold)  # before anything is read
    gallery = get_gallery(ctx, gallery_name)
    thr = checked_similarity(gallery.identify_threshold) if given is None else given
    faces = [Face.from_doc(d) for d in ctx.db.faces.find({"gallery": gallery.name, "vector_state": "indexed"})]
    best: dict[tuple[str, str], tuple[float, str, str]] = {}
    for start in range(0, len(faces), 256):
        chunk = faces[start : start + 256]
        hits = ctx.index.query(gallery.collection, np.stack([f.vector for f in chunk]), k)
        for face, row in zip(chunk, hits, strict=True):
            for h in row:
                if h.person_id == face.person_id or h.similarity < thr:
                    continue
                key = tuple(sorted((face.person_id, h.person_id)))
                pair = (key[0], key[1])
                if pair not in best or h.similarity > best[pair][0]:
                    a_face, b_face = (face.id, h.face_id) if face.person_id == pair[0] else (h.face_id, face.id)
                    best[pair] = (h.similarity, a_face, b_face)
    new = 0
    for (a, b), (sim, fa, fb) in best.items():
        res = ctx.db.dedup_reviews.update_one(
            {"_id": review_id(gallery.name, a, b)},
            {
                "$setOnInsert": {
                    "gallery": gallery.name,
                    "person_ids": [a, b],
                    "status": "open",
                    "created_at": utcnow(),
                },
                "$set": {"similarity": sim, "face_ids": [fa, fb], "updated_at": utcnow()},
            },
            upsert=True,
        )
        new += int(res.upserted_id is not None)
    return new


@dataclass(frozen=True, slots=True)
class OpenReview:
    review: Review
    names: list[str]  # the display names of `review.person_ids`


def open_reviews(ctx: ServiceContext, gallery: str) -> list[OpenReview]:
    """The gallery's undecided reviews, most similar first, with the persons' names."""
    query = {"gallery": gallery, "status": "open"}
    reviews = [Review.from_doc(d) for d in ctx.db.dedup_reviews.find(query).sort("similarity", -1)]
    names = names_of(ctx, {p for r in reviews for p in r.person_ids})
    return [OpenReview(r, [names.get(p, "?") for p in r.person_ids]) for r in reviews]


def decide_review(
    ctx: ServiceContext,
    rid: str,
    decision: Decision,
    actor: str,
    keep_person: str | None = None,
    face_id: str | None = None,
) -> dict[str, Any]:
    """Apply and persist a decision. merge: the other person's faces move to `keep_person`, who stays."""
    review = Review.get(ctx.db.dedup_reviews, rid, f"review {rid}")
    if review.status != "open":
        raise ServiceError(f"review {rid} was already decided ({review.status})")
    gallery = get_gallery(ctx, review.gallery)
    details: dict[str, Any] = {}
    if decision == "merge":
        details = _merge(ctx, gallery.name, review.person_ids, keep_person or review.person_ids[0], actor)
    elif decision == "remove_face":
        if face_id not in review.face_ids:
            raise ServiceError("remove_face needs one of the two faces of the pair")
        delete_faces(ctx, gallery, [Face.from_doc(d) for d in ctx.db.faces.find({"_id": face_id})])
        details = {"removed_face": face_id}
    status = DECIDED[decision]
    # Written whole: a merge erases the other person, and with them the reviews that name them.
    decided = replace(review, status=status, decided_by=actor, decided_at=utcnow(), details=details)
    ctx.db.dedup_reviews.replace_one({"_id": rid}, decided.to_doc(), upsert=True)
    audit(ctx, actor, f"dedup.{status}", rid, details)
    return {"review": rid, "status": status, **details}


def _merge(ctx: ServiceContext, gallery: str, person_ids: list[str], keep: str, actor: str) -> dict[str, Any]:
    if keep not in person_ids:
        raise ServiceError("merge must keep one of the two persons of the pair")
    other = person_ids[1] if keep == person_ids[0] else person_ids[0]
    g = get_gallery(ctx, gallery)
    moved = [Face.from_doc(d) for d in ctx.db.faces.find({"person_id": other, "gallery": gallery})]
    have = {d["image_sha256"] for d in ctx.db.faces.find({"person_id": keep, "gallery": gallery}, {"image_sha256": 1})}
    keep_faces = [f for f in moved if f.image_sha256 not in have]
    # The faces keep their ids; their files are copied into the kept person's folder (the other
    # person's folder goes with the erasure below), then the person changes in Mongo, then in Chroma.
    for f in keep_faces:
        image, chip = ctx.images.copy_face(gallery, keep, f.image_path, f.chip_path)
        ctx.db.faces.update_one(
            {"_id": f.id},
            {
                "$set": {
                    "person_id": keep,
                    "image_path": image,
                    "chip_path": chip,
                    "vector_state": "pending",
                    "updated_at": utcnow(),
                }
            },
        )
    project(ctx, g, [replace(f, person_id=keep) for f in keep_faces])  # the vectors, then both templates
    refresh_templates(ctx, g, [other])
    erase_person(ctx, other, actor)  # what is left of the other person: duplicate images, attendance
    return {"kept_person": keep, "merged_person": other, "faces_moved": len(keep_faces)}
