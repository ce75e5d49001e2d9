"""Bulk registration and probe search, through the queue or in-process, with progress bars."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from model.errors import FaceregError, error_info
from services.context import ServiceContext
from services.registry.bulk import BulkSummary, PersonPlan, record_rejections
from services.registry.enrollment import EnrollOptions, EnrollRequest, ImageInput, enroll_many, rejection
from services.registry.persons import PersonInput
from services.search.identification import rank_primary_faces
from services.storage.input_paths import printable, read_input
from workers import payloads
from workers.client import TaskClient
from workers.errors import QueueUnavailable
from workers.payloads import ImagePayload

Runner = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
SEARCH_TIMEOUT_S = 3600


def person_payloads(plans: Sequence[PersonPlan]) -> list[dict[str, Any]]:
    return [
        {
            "display_name": p.display_name,
            "external_id": p.external_id,
            "images": [payloads.from_path(path) for path in p.enroll],
        }
        for p in plans
    ]


def image_names(plan: PersonPlan) -> dict[str, Path]:
    """The plan's enroll images by the name their payloads and outcomes carry."""
    return {payloads.label(path.name): path for path in plan.enroll}


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def register(
    ctx: ServiceContext,
    plans: Sequence[PersonPlan],
    gallery: str,
    options: EnrollOptions,
    chunk: int,
    queue: TaskClient | None,
    timeout: float = 3600.0,
    roots: Sequence[Path] | None = None,
) -> BulkSummary:
    """Enroll the plans' images, through the workers of `queue` or (None) in this process (reading only under
    `roots`, default the allowed input roots); a refused image is a rejection, recorded when it will not
    change."""
    summary = BulkSummary(images=sum(len(p.enroll) for p in plans))
    by_ext = {p.external_id: p for p in plans}
    started = time.perf_counter()
    with tqdm(total=len(plans), desc="register", unit="person") as bar:

        def collect(results: list[dict[str, Any]]) -> None:
            for res in results:
                summary.add(res)
                plan = by_ext.get(res.get("external_id", ""))
                if plan is not None:
                    rejected = [i for i in res["images"] if i["status"] == "rejected"]
                    record_rejections(ctx, gallery, plan, rejected, image_names(plan))
            bar.update(len(results))

        if queue is not None:
            opts = {k: getattr(options, k) for k in ("multi_face", "min_quality", "duplicate_photos")}
            _via_queue(queue, chunks(person_payloads(plans), chunk), gallery, opts, collect, summary, timeout)
        else:
            allowed = ctx.settings.allowed_input_roots if roots is None else roots
            for batch in chunks(plans, chunk):
                collect(_enroll_here(ctx, batch, gallery, options, allowed))
    summary.seconds = time.perf_counter() - started
    return summary


def _enroll_here(
    ctx: ServiceContext, plans: list[PersonPlan], gallery: str, options: EnrollOptions, roots: Sequence[Path]
) -> list[dict[str, Any]]:
    """A chunk enrolled in this process; each file read under `roots`, a refused one a rejection."""
    requests = []
    for plan in plans:
        images, refused = [], []
        for path in plan.enroll:
            name = payloads.label(path.name)
            try:
                images.append(ImageInput(name, read_input(path, roots, ctx.settings.max_image_bytes)))
            except FaceregError as exc:
                refused.append(rejection(name, exc))
        requests.append(EnrollRequest(PersonInput(plan.display_name, plan.external_id), images, refused))
    results = enroll_many(ctx, requests, gallery, "build_database", options)
    return [{**r.to_dict(), "external_id": p.external_id} for r, p in zip(results, plans, strict=True)]


def _via_queue(
    queue: TaskClient,
    batches: list[list[dict[str, Any]]],
    gallery: str,
    opts: dict[str, Any],
    collect: Callable[[list[dict[str, Any]]], None],
    summary: BulkSummary,
    timeout: float,
) -> None:
    """Submit every chunk, then follow them; a chunk lost with the broker is submitted again."""
    deadline = time.monotonic() + timeout
    args = (gallery, opts, "build_database")
    batch_of = {_submit_patiently(queue, batch, args, deadline): batch for batch in batches}
    pending = set(batch_of)
    resubmitted = 0
    for st in queue.finished(pending, deadline):
        batch = batch_of.pop(st.id)
        if st.state == "SUCCESS":
            collect([{**r, "external_id": p["external_id"]} for r, p in zip(st.result, batch, strict=True)])
        elif st.broker_lost and resubmitted < len(batches):
            resubmitted += 1
            tid = _submit_patiently(queue, batch, args, deadline)
            batch_of[tid] = batch
            pending.add(tid)
        else:
            summary.failures.append(f"{_task_of(st.id, batch)}: {st.error or st.state}")
    summary.failures += [f"{_task_of(tid, batch_of[tid])}: not finished after {timeout:.0f} s" for tid in pending]


def _task_of(task_id: str, batch: list[dict[str, Any]]) -> str:
    """A task named with the persons it carried (their images are neither enrolled nor rejected)."""
    return f"task {task_id} ({', '.join(p['external_id'] for p in batch)})"


def _submit_patiently(queue: TaskClient, batch: list[dict[str, Any]], args: tuple[Any, ...], deadline: float) -> str:
    """Submit, waiting out a broker outage until the deadline (then the clear QueueUnavailable error)."""
    while True:
        try:
            return queue.submit("bulk_register", batch, *args)
        except QueueUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def search(
    ctx: ServiceContext,
    plans: Sequence[PersonPlan],
    gallery: str,
    chunk: int,
    queue: TaskClient | None,
    top_k: int = 5,
    roots: Sequence[Path] | None = None,
) -> list[dict[str, Any]]:
    """Each held-out image's ranked persons: [{"name", "expected", "ranked": [[external_id, sim]], "error"}],
    searched by the workers of `queue` or (None) in this process."""
    items = [
        (payloads.from_path(path, f"{p.folder}/{printable(path.name)}"), p.external_id)
        for p in plans
        for path in p.probes
    ]
    expected = {payload["name"]: ext for payload, ext in items}
    batches = chunks([payload for payload, _ in items], chunk)
    out: list[dict[str, Any]] = []
    with tqdm(total=len(items), desc="evaluate", unit="img") as bar:
        if queue is not None:
            pending = {queue.submit("search_batch", b, gallery, top_k) for b in batches}
            for st in queue.finished(pending, time.monotonic() + SEARCH_TIMEOUT_S):
                if st.state != "SUCCESS":
                    raise RuntimeError(f"search task {st.id} failed: {st.error or st.state}")
                out += st.result
                bar.update(len(st.result))
            if pending:
                raise RuntimeError(f"{len(pending)} search task(s) not finished after {SEARCH_TIMEOUT_S} s")
        else:
            allowed = ctx.settings.allowed_input_roots if roots is None else roots
            for b in batches:
                out += _search_here(ctx, b, gallery, top_k, allowed)
                bar.update(len(b))
    return [{**r, "expected": expected[r["name"]]} for r in out]


def _search_here(
    ctx: ServiceContext, batch: list[ImagePayload], gallery: str, top_k: int, roots: Sequence[Path]
) -> list[dict[str, Any]]:
    """Probes searched in this process; each file read under `roots`, a refused one a failed probe."""
    readable, out = [], []
    for item in batch:
        try:
            readable.append(payloads.read(item, roots, ctx.settings.max_image_bytes))
        except FaceregError as exc:
            out.append({"name": item["name"], "error": error_info(exc).to_dict(), "ranked": []})
    return out + rank_primary_faces(ctx, readable, gallery, top_k)
