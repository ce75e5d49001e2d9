"""Celery tasks. Each is idempotent (running it twice changes nothing more) and returns small JSON.

Every task is declared in workers.messages (name, queue, arguments, result): its arguments are checked
before any work (a bad message fails at once with InvalidTaskMessage, never retried, and the worker carries
on), its result as it leaves, and any failure leaves as TaskError(code, message) (workers.errors)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from celery import Task
from celery.exceptions import TaskPredicate
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError

from model.errors import FaceregError, error_info
from services.attendance.events import record_sighting
from services.attendance.recognition import recognise_chips as recognise
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
from workers import payloads, realtime
from workers.errors import InternalError, TaskError, error_of
from workers.messages import (
    TASKS,
    BulkRegisterArgs,
    DedupScanArgs,
    EnrollArgs,
    EvaluateArgs,
    GalleryArgs,
    GalleryEvaluationArgs,
    IdentifyArgs,
    ImageMessage,
    InspectArgs,
    LogSightingsArgs,
    PersonMessage,
    ProcessFramesArgs,
    RecogniseChipsArgs,
    ReindexArgs,
    SearchBatchArgs,
    VerifyArgs,
)
from workers.runtime import get_context
from workers.worker import app

log = logging.getLogger(__name__)

# Transient outages of MongoDB or Redis: retried with exponential backoff (2, 4, 8 ... 60 s). Nothing else is
# retried; a typed failure is an expected one, logged in one line without a traceback.
TRANSIENT = (StorageUnavailable, ConnectionFailure, RedisConnectionError)
COMMON = {
    "throws": (TaskError,),
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


class QueueTask(Task):
    """A facereg task: whatever it fails with leaves as TaskError(code, message), after the retries (Celery's
    own retry, ignore and reject signals pass through); an unexpected error's traceback is logged here."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TaskPredicate:
            raise
        except Exception as exc:
            code, message = error_of(exc)
            if code == InternalError.code:
                log.exception("task %s (%s) failed unexpectedly", self.name, self.request.id)
            raise TaskError(code, message) from exc


def task(**options: Any) -> Callable[[Callable[[Any, Any], object]], Any]:
    """A body `fn(self, args)` as the Celery task of its name in workers.messages.TASKS: the message is checked
    against the task's arguments model first (missing, extra and mistyped arguments alike: Celery checks no
    arity of its own on a `*args` function), and what the body returns against its result type."""

    def register(fn: Callable[[Any, Any], object]) -> Any:
        spec = TASKS[fn.__name__]

        @functools.wraps(fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        def run(self: Task, *args: Any, **kwargs: Any) -> Any:
            return spec.dump_result(fn(self, spec.args.parse(spec.name, args, kwargs)))

        return app.task(bind=True, name=spec.celery_name, base=QueueTask, **{**COMMON, **options})(run)

    return register


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


@task()
def enroll(self: Task, m: EnrollArgs) -> dict[str, Any]:
    return _register(get_context(), [(m.person, m.images)], m)[0]


@task()
def bulk_register(self: Task, m: BulkRegisterArgs) -> list[dict[str, Any]]:
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


@task()
def identify(self: Task, m: IdentifyArgs) -> dict[str, Any]:
    ctx = get_context()
    name, data = payloads.read(m.image.payload())
    return {"image": name, "faces": [f.to_dict() for f in identify_image(ctx, data, m.gallery, m.top_k)]}


@task()
def inspect(self: Task, m: InspectArgs) -> dict[str, Any]:
    name, data = payloads.read(m.image.payload())
    return {"image": name, **inspect_photo(get_context(), data, m.gallery, m.person_id)}


@task()
def verify(self: Task, m: VerifyArgs) -> dict[str, Any]:
    ctx = get_context()
    threshold = verify_threshold(ctx.settings, ctx.pipeline)
    if m.gallery and ctx.db.galleries.find_one({"_id": m.gallery}):
        threshold = get_gallery(ctx, m.gallery).verify_threshold
    a, b = (payloads.read(i.payload())[1] for i in (m.image_a, m.image_b))
    return compare(ctx.pipeline, a, b, threshold)


@task()
def search_batch(self: Task, m: SearchBatchArgs) -> list[dict[str, Any]]:
    """An image that cannot be read is one failed probe, never a failed task."""
    out: list[dict[str, Any]] = []
    readable: list[tuple[str, bytes]] = []
    for item in m.images:
        try:
            readable.append(payloads.read(item.payload()))
        except FaceregError as exc:
            out.append({"name": item.name or "?", "error": error_info(exc).to_dict(), "ranked": []})
    return out + rank_primary_faces(get_context(), readable, m.gallery, m.top_k)


@task()
def process_frames(self: Task, m: ProcessFramesArgs) -> list[dict[str, Any]]:
    ctx = get_context()
    data = [payloads.read(f.payload())[1] for f in m.frames]
    return [r.to_dict() for r in process_stream_frames(ctx, data, m.source, m.gallery, m.times, m.top_k)]


@task(acks_late=False)
def gallery_evaluation(self: Task, m: GalleryEvaluationArgs) -> dict[str, Any]:
    """Long: acknowledged on receipt (a redelivery mid-run would start it twice); its job record tells."""
    source = {"kind": "csv", "root": m.root, "split_csv": m.split_csv}
    return _evaluate(get_context(), source, m.gallery, m.job_id or self.request.id)


@task(acks_late=False)
def evaluate(self: Task, m: EvaluateArgs) -> dict[str, Any]:
    """Long, as gallery_evaluation; the sources are read by services.evaluation.sources."""
    return _evaluate(get_context(), m.source.model_dump(), m.gallery, m.job_id or self.request.id)


def _evaluate(ctx: ServiceContext, source: dict[str, Any], gallery: str, job_id: str) -> dict[str, Any]:
    root, rows = rows_for(ctx, source)
    return evaluate_gallery(ctx, root, rows, gallery, job_id=job_id).report


@task()
def image_duplicates(self: Task, m: GalleryArgs) -> dict[str, Any]:
    groups = find_gallery_duplicates(get_context(), m.gallery)
    return {"gallery": m.gallery, "groups": [g.to_dict() for g in groups]}


@task(acks_late=False)
def reindex(self: Task, m: ReindexArgs) -> dict[str, Any]:
    """Long: acknowledged on receipt; the gallery records the reindex it is running."""
    ctx = get_context()
    pipeline = build_pipeline(ctx.settings, model=m.model, runtime=m.runtime)
    return reindex_gallery(ctx, m.gallery, pipeline, actor="worker")


@task()
def reconcile(self: Task, m: GalleryArgs) -> dict[str, Any]:
    return reconcile_gallery(get_context(), m.gallery).to_dict()


@task()
def dedup_scan(self: Task, m: DedupScanArgs) -> dict[str, Any]:
    found = scan_identity_candidates(get_context(), m.gallery, m.threshold)
    return {"gallery": m.gallery, "new_candidates": found}


@task()
def recognise_chips(self: Task, m: RecogniseChipsArgs) -> list[dict[str, Any]]:
    ctx = get_context()
    chips = [realtime.read_image(c) for c in m.chips]
    return [realtime.chip_result(c) for c in recognise(ctx, m.gallery or ctx.settings.gallery, chips, m.top_k)]


@task()
def log_sightings(self: Task, m: LogSightingsArgs) -> list[dict[str, Any]]:
    """Idempotent: each sighting's key logs it once, however often it is sent."""
    ctx = get_context()
    return [
        realtime.logged_result(s.key, record_sighting(ctx, realtime.sighting_of(s), m.cooldown_s)) for s in m.sightings
    ]
