"""Celery tasks. Each is idempotent (running it twice changes nothing more) and returns small JSON.

Every task's arguments are checked against its schema (workers.schemas) before any work: a bad
message fails at once with InvalidTaskMessage, never retried, and the worker carries on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Task
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError

from model.errors import FaceregError
from services.attendance.streams import process_frames as process_stream_frames
from services.context import ServiceContext
from services.dedup.duplicates import find_gallery_duplicates, scan_identity_candidates
from services.engine import build_pipeline, verify_threshold
from services.errors import StorageUnavailable
from services.evaluation.gallery import evaluate_gallery
from services.evaluation.sources import rows_for
from services.registry.consistency import reconcile as reconcile_gallery
from services.registry.consistency import reindex as reindex_gallery
from services.registry.enrollment import EnrollRequest, ImageInput, ImageOutcome, enroll_many, rejection
from services.registry.galleries import get_gallery
from services.registry.inspection import inspect_photo
from services.search.identification import identify_image, rank_primary_faces
from services.search.verification import compare
from workers import payloads
from workers.app import app
from workers.runtime import get_context
from workers.schemas import (
    BulkRegisterArgs,
    DedupScanArgs,
    EnrollArgs,
    EvaluateArgs,
    GalleryArgs,
    GalleryEvaluationArgs,
    IdentifyArgs,
    ImageMessage,
    InspectArgs,
    InvalidTaskMessage,
    PersonMessage,
    ProcessFramesArgs,
    ReindexArgs,
    SearchBatchArgs,
    VerifyArgs,
    validated,
)

log = logging.getLogger(__name__)

# Transient outages of MongoDB or Redis: retried with exponential backoff (2, 4, 8 ... 60 s). Nothing else is
# retried; a refused message is an expected failure, logged in one line without a traceback.
TRANSIENT = (StorageUnavailable, ConnectionFailure, RedisConnectionError)
COMMON = {
    "throws": (InvalidTaskMessage,),
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


def _images(items: Sequence[ImageMessage]) -> tuple[list[ImageInput], list[ImageOutcome]]:
    """Decoded payloads, and the ones that could not be read (reported, never fatal to the task)."""
    good, bad = [], []
    for item in items:
        try:
            name, data = payloads.read(item.payload())
            good.append(ImageInput(name, data))
        except FaceregError as exc:
            bad.append(rejection(item.name or "?", exc))
    return good, bad


@app.task(bind=True, name="workers.tasks.enroll", **COMMON)
@validated(EnrollArgs)
def enroll(self: Task, m: EnrollArgs) -> dict[str, Any]:
    """One person and their photos: (person, images, gallery?, options?, actor?)."""
    return _register(get_context(), [(m.person, m.images)], m)[0]


@app.task(bind=True, name="workers.tasks.bulk_register", **COMMON)
@validated(BulkRegisterArgs)
def bulk_register(self: Task, m: BulkRegisterArgs) -> list[dict[str, Any]]:
    """A chunk of persons, `{"display_name", "external_id", "images": [payload]}` each, embedded in one batch:
    (persons, gallery?, options?, actor?)."""
    return _register(get_context(), [(p, p.images) for p in m.persons], m)


def _register(
    ctx: ServiceContext,
    people: Sequence[tuple[PersonMessage, Sequence[ImageMessage]]],
    m: EnrollArgs | BulkRegisterArgs,
) -> list[dict[str, Any]]:
    requests = []
    for person, images in people:
        good, refused = _images(images)
        requests.append(EnrollRequest(person.to_input(), good, refused))
    options = m.options.to_options() if m.options else None
    return [r.to_dict() for r in enroll_many(ctx, requests, m.gallery, m.actor, options)]


@app.task(bind=True, name="workers.tasks.identify", **COMMON)
@validated(IdentifyArgs)
def identify(self: Task, m: IdentifyArgs) -> dict[str, Any]:
    """Every face of a photo identified: (image, gallery?, top_k?)."""
    ctx = get_context()
    name, data = payloads.read(m.image.payload())
    return {"image": name, "faces": [f.to_dict() for f in identify_image(ctx, data, m.gallery, m.top_k)]}


@app.task(bind=True, name="workers.tasks.inspect", **COMMON)
@validated(InspectArgs)
def inspect(self: Task, m: InspectArgs) -> dict[str, Any]:
    """A photo checked before enrollment (faces, quality, warnings); nothing is written: (image, gallery?,
    person_id?)."""
    name, data = payloads.read(m.image.payload())
    return {"image": name, **inspect_photo(get_context(), data, m.gallery, m.person_id)}


@app.task(bind=True, name="workers.tasks.verify", **COMMON)
@validated(VerifyArgs)
def verify(self: Task, m: VerifyArgs) -> dict[str, Any]:
    """1:1: the two photos' main faces compared at the gallery's 1:1 threshold (or the model's):
    (image_a, image_b, gallery?)."""
    ctx = get_context()
    threshold = verify_threshold(ctx.settings, ctx.pipeline)
    if m.gallery and ctx.db.galleries.find_one({"_id": m.gallery}):
        threshold = get_gallery(ctx, m.gallery).verify_threshold
    a, b = (payloads.read(i.payload())[1] for i in (m.image_a, m.image_b))
    return compare(ctx.pipeline, a, b, threshold)


@app.task(bind=True, name="workers.tasks.search_batch", **COMMON)
@validated(SearchBatchArgs)
def search_batch(self: Task, m: SearchBatchArgs) -> list[dict[str, Any]]:
    """The primary face of each image searched in the gallery: ranked persons (external id or id):
    (images, gallery?, top_k?)."""
    out: list[dict[str, Any]] = []
    readable: list[tuple[str, bytes]] = []
    for item in m.images:
        try:
            readable.append(payloads.read(item.payload()))
        except FaceregError as exc:
            out.append({"name": item.name or "?", "error": f"{type(exc).__name__}: {exc}", "ranked": []})
    return out + rank_primary_faces(get_context(), readable, m.gallery, m.top_k)


@app.task(bind=True, name="workers.tasks.process_frames", **COMMON)
@validated(ProcessFramesArgs)
def process_frames(self: Task, m: ProcessFramesArgs) -> list[dict[str, Any]]:
    """A batch of frames from one stream; attendance events are logged with the cooldown:
    (frames, source, gallery?, times?, top_k?)."""
    ctx = get_context()
    data = [payloads.read(f.payload())[1] for f in m.frames]
    return [
        {"index": r.index, "faces": r.faces, "error": r.error}
        for r in process_stream_frames(ctx, data, m.source, m.gallery, m.times, m.top_k)
    ]


@app.task(bind=True, name="workers.tasks.gallery_evaluation", acks_late=False, **COMMON)
@validated(GalleryEvaluationArgs)
def gallery_evaluation(self: Task, m: GalleryEvaluationArgs) -> dict[str, Any]:
    """Long: acknowledged on receipt (a redelivery mid-run would start it twice); its job record tells:
    (root, split_csv, gallery, job_id?)."""
    source = {"kind": "csv", "root": m.root, "split_csv": m.split_csv}
    return _evaluate(get_context(), source, m.gallery, m.job_id or self.request.id)


@app.task(bind=True, name="workers.tasks.evaluate", acks_late=False, **COMMON)
@validated(EvaluateArgs)
def evaluate(self: Task, m: EvaluateArgs) -> dict[str, Any]:
    """A Top-K evaluation from a split CSV, a folder or a gallery holdout (see services.evaluation.sources):
    (source, gallery, job_id?)."""
    return _evaluate(get_context(), m.source.model_dump(), m.gallery, m.job_id or self.request.id)


def _evaluate(ctx: ServiceContext, source: dict[str, Any], gallery: str, job_id: str) -> dict[str, Any]:
    root, rows = rows_for(ctx, source)
    result = evaluate_gallery(ctx, root, rows, gallery, job_id=job_id)
    return {k: v for k, v in result.items() if k not in ("unknown_best", "known_top1")}


@app.task(bind=True, name="workers.tasks.image_duplicates", **COMMON)
@validated(GalleryArgs)
def image_duplicates(self: Task, m: GalleryArgs) -> dict[str, Any]:
    """Groups of near-identical photos in a gallery, each with its best-quality member: (gallery)."""
    groups = find_gallery_duplicates(get_context(), m.gallery)
    return {"gallery": m.gallery, "groups": [g.to_dict() for g in groups]}


@app.task(bind=True, name="workers.tasks.reindex", acks_late=False, **COMMON)
@validated(ReindexArgs)
def reindex(self: Task, m: ReindexArgs) -> dict[str, Any]:
    """Every face of a gallery re-embedded with another model: (gallery, model, runtime?)."""
    ctx = get_context()
    pipeline = build_pipeline(ctx.settings, model=m.model, runtime=m.runtime)
    return reindex_gallery(ctx, m.gallery, pipeline, actor="worker")


@app.task(bind=True, name="workers.tasks.reconcile", **COMMON)
@validated(GalleryArgs)
def reconcile(self: Task, m: GalleryArgs) -> dict[str, Any]:
    """Records and vectors of a gallery made to agree: (gallery)."""
    return reconcile_gallery(get_context(), m.gallery).to_dict()


@app.task(bind=True, name="workers.tasks.dedup_scan", **COMMON)
@validated(DedupScanArgs)
def dedup_scan(self: Task, m: DedupScanArgs) -> dict[str, Any]:
    """Pairs of persons who may be one, queued for review: (gallery, threshold?)."""
    found = scan_identity_candidates(get_context(), m.gallery, m.threshold)
    return {"gallery": m.gallery, "new_candidates": found}
