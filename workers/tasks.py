"""Celery tasks. Each is idempotent (running it twice changes nothing more) and returns small JSON."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Task
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError

from model.errors import FaceregError
from services.consistency import reconcile as reconcile_gallery
from services.consistency import reindex as reindex_gallery
from services.context import ServiceContext
from services.dedup import find_gallery_duplicates, scan_identity_candidates
from services.engine import build_pipeline, verify_threshold
from services.enrollment import EnrollOptions, EnrollRequest, ImageInput, enroll_many
from services.errors import StorageUnavailable
from services.evaluation import read_csv
from services.evaluation_sources import rows_for
from services.galleries import get_gallery
from services.gallery_evaluation import evaluate_gallery, rows_from_csv
from services.identification import identify_image, rank_primary_faces
from services.inspection import inspect_photo
from services.persons import PersonInput
from services.records import Consent
from services.streams import process_frames as process_stream_frames
from services.verification import compare
from workers import payloads
from workers.app import app
from workers.runtime import get_context

log = logging.getLogger(__name__)

# Transient outages of MongoDB or Redis: retried with exponential backoff (2, 4, 8 ... 60 s).
TRANSIENT = (StorageUnavailable, ConnectionFailure, RedisConnectionError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


def _images(items: list[dict[str, Any]]) -> tuple[list[ImageInput], list[dict[str, str]]]:
    """Decoded payloads, and the ones that could not be read (reported, never fatal to the task)."""
    good, bad = [], []
    for item in items:
        try:
            name, data = payloads.read(item)
            good.append(ImageInput(name, data))
        except FaceregError as exc:
            bad.append(
                {"name": str(item.get("name", "?")), "status": "rejected", "reason": f"{type(exc).__name__}: {exc}"}
            )
    return good, bad


def _options(options: dict[str, Any] | None) -> EnrollOptions | None:
    return None if not options else EnrollOptions(options["multi_face"], float(options["min_quality"]))


def person_input(p: dict[str, Any]) -> PersonInput:
    """`{"display_name", "external_id"?, "person_id"?, "consent"?: {"given", "note"}}` from a message."""
    consent = p.get("consent")
    return PersonInput(
        str(p.get("display_name", "")),
        p.get("external_id") or None,
        Consent(bool(consent["given"]), str(consent.get("note", ""))) if consent else None,
        p.get("person_id") or None,
    )


@app.task(bind=True, name="workers.tasks.enroll", **RETRY)
def enroll(
    self: Task,
    person: dict[str, Any],
    images: list[dict[str, Any]],
    gallery: str | None = None,
    options: dict[str, Any] | None = None,
    actor: str = "worker",
) -> dict[str, Any]:
    """One person and their photos."""
    return register(get_context(), [{**person, "images": images}], gallery, options, actor)[0]


@app.task(bind=True, name="workers.tasks.bulk_register", **RETRY)
def bulk_register(
    self: Task,
    persons: list[dict[str, Any]],
    gallery: str | None = None,
    options: dict[str, Any] | None = None,
    actor: str = "worker",
) -> list[dict[str, Any]]:
    """A chunk of persons, `{"display_name", "external_id", "images": [payload]}` each, embedded in one batch."""
    return register(get_context(), persons, gallery, options, actor)


def register(
    ctx: ServiceContext,
    persons: list[dict[str, Any]],
    gallery: str | None,
    options: dict[str, Any] | None,
    actor: str,
) -> list[dict[str, Any]]:
    """Persons as task messages carry them -> enrollment results (unreadable images reported, not fatal)."""
    requests, unreadable = [], []
    for p in persons:
        good, bad = _images(p["images"])
        requests.append(EnrollRequest(person_input(p), good))
        unreadable.append(bad)
    results = enroll_many(ctx, requests, gallery, actor, _options(options))
    out = []
    for res, bad in zip(results, unreadable, strict=True):
        d = res.to_dict()
        d["images"] = [*d["images"], *bad]
        d["rejected"] += len(bad)
        out.append(d)
    return out


@app.task(bind=True, name="workers.tasks.identify", **RETRY)
def identify(self: Task, image: dict[str, Any], gallery: str | None = None, top_k: int = 5) -> dict[str, Any]:
    ctx = get_context()
    name, data = payloads.read(image)
    return {"image": name, "faces": [f.to_dict() for f in identify_image(ctx, data, gallery, top_k)]}


@app.task(bind=True, name="workers.tasks.inspect", **RETRY)
def inspect(
    self: Task, image: dict[str, Any], gallery: str | None = None, person_id: str | None = None
) -> dict[str, Any]:
    """A photo checked before enrollment (faces, quality, warnings); nothing is written."""
    name, data = payloads.read(image)
    return {"image": name, **inspect_photo(get_context(), data, gallery, person_id)}


@app.task(bind=True, name="workers.tasks.verify", **RETRY)
def verify(self: Task, image_a: dict[str, Any], image_b: dict[str, Any], gallery: str | None = None) -> dict[str, Any]:
    """1:1: the two photos' main faces compared at the gallery's 1:1 threshold (or the model's)."""
    ctx = get_context()
    threshold = verify_threshold(ctx.settings, ctx.pipeline)
    if gallery and ctx.db.galleries.find_one({"_id": gallery}):
        threshold = get_gallery(ctx, gallery).verify_threshold
    return compare(ctx.pipeline, payloads.read(image_a)[1], payloads.read(image_b)[1], threshold)


@app.task(bind=True, name="workers.tasks.search_batch", **RETRY)
def search_batch(
    self: Task, images: list[dict[str, Any]], gallery: str | None = None, top_k: int = 5
) -> list[dict[str, Any]]:
    """The primary face of each image searched in the gallery: ranked persons (external id or id)."""
    out: list[dict[str, Any]] = []
    readable: list[tuple[str, bytes]] = []
    for item in images:
        try:
            readable.append(payloads.read(item))
        except FaceregError as exc:
            out.append({"name": str(item.get("name", "?")), "error": f"{type(exc).__name__}: {exc}", "ranked": []})
    return out + rank_primary_faces(get_context(), readable, gallery, top_k)


@app.task(bind=True, name="workers.tasks.process_frames", **RETRY)
def process_frames(
    self: Task,
    frames: list[dict[str, Any]],
    source: str,
    gallery: str | None = None,
    times: list[str] | None = None,
    top_k: int = 3,
) -> list[dict[str, Any]]:
    """A batch of frames from one stream; attendance events are logged with the cooldown."""
    ctx = get_context()
    data = [payloads.read(f)[1] for f in frames]
    when = [datetime.fromisoformat(t) for t in times] if times else None
    return [
        {"index": r.index, "faces": r.faces, "error": r.error}
        for r in process_stream_frames(ctx, data, source, gallery, when, top_k)
    ]


@app.task(bind=True, name="workers.tasks.gallery_evaluation", acks_late=False, **RETRY)
def gallery_evaluation(
    self: Task, root: str, split_csv: str, gallery: str, job_id: str | None = None
) -> dict[str, Any]:
    """Long: acknowledged on receipt (a redelivery mid-run would start it twice); its job record tells."""
    ctx = get_context()
    rows = rows_from_csv(read_csv(Path(split_csv), ("path", "identity", "role")))
    result = evaluate_gallery(ctx, Path(root), rows, gallery, job_id=job_id or self.request.id)
    return {k: v for k, v in result.items() if k not in ("unknown_best", "known_top1")}


@app.task(bind=True, name="workers.tasks.evaluate", acks_late=False, **RETRY)
def evaluate(self: Task, source: dict[str, Any], gallery: str, job_id: str | None = None) -> dict[str, Any]:
    """A Top-K evaluation from a split CSV, a folder or a gallery holdout (see services.evaluation_sources)."""
    ctx = get_context()
    root, rows = rows_for(ctx, source)
    result = evaluate_gallery(ctx, root, rows, gallery, job_id=job_id or self.request.id)
    return {k: v for k, v in result.items() if k not in ("unknown_best", "known_top1")}


@app.task(bind=True, name="workers.tasks.image_duplicates", **RETRY)
def image_duplicates(self: Task, gallery: str) -> dict[str, Any]:
    """Groups of near-identical photos in a gallery, each with its best-quality member."""
    return {"gallery": gallery, "groups": [g.to_dict() for g in find_gallery_duplicates(get_context(), gallery)]}


@app.task(bind=True, name="workers.tasks.reindex", acks_late=False, **RETRY)
def reindex(self: Task, gallery: str, model: str, runtime: str = "auto") -> dict[str, Any]:
    ctx = get_context()
    return reindex_gallery(ctx, gallery, build_pipeline(ctx.settings, model=model, runtime=runtime), actor="worker")


@app.task(bind=True, name="workers.tasks.reconcile", **RETRY)
def reconcile(self: Task, gallery: str) -> dict[str, Any]:
    return reconcile_gallery(get_context(), gallery).to_dict()


@app.task(bind=True, name="workers.tasks.dedup_scan", **RETRY)
def dedup_scan(self: Task, gallery: str, threshold: float | None = None) -> dict[str, Any]:
    return {"gallery": gallery, "new_candidates": scan_identity_candidates(get_context(), gallery, threshold)}
