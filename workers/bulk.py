"""Bulk registration and probe search, through the queue or in-process, with progress bars."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from services.bulk import BulkSummary, PersonPlan, record_rejections
from services.context import ServiceContext
from services.enrollment import EnrollOptions
from services.identification import rank_primary_faces
from workers import client, payloads, tasks

Runner = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
SEARCH_TIMEOUT_S = 3600


def person_payloads(plans: Sequence[PersonPlan]) -> list[dict[str, Any]]:
    return [
        {
            "display_name": p.folder.replace("_", " "),
            "external_id": p.external_id,
            "images": [payloads.from_path(path) for path in p.enroll],
        }
        for p in plans
    ]


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def register(
    ctx: ServiceContext,
    plans: Sequence[PersonPlan],
    gallery: str,
    options: EnrollOptions,
    chunk: int,
    use_queue: bool,
    timeout: float = 3600.0,
) -> BulkSummary:
    summary = BulkSummary(images=sum(len(p.enroll) for p in plans))
    by_ext = {p.external_id: p for p in plans}
    opts = {"multi_face": options.multi_face, "min_quality": options.min_quality}
    started = time.perf_counter()
    batches = chunks(person_payloads(plans), chunk)
    with tqdm(total=len(plans), desc="register", unit="person") as bar:

        def collect(results: list[dict[str, Any]]) -> None:
            for res in results:
                summary.add(res)
                plan = by_ext[res["external_id"]] if "external_id" in res else None
                if plan is not None:
                    rejected = [i for i in res["images"] if i["status"] == "rejected"]
                    record_rejections(ctx, gallery, plan.external_id, rejected, {p.name: p for p in plan.enroll})
            bar.update(len(results))

        if use_queue:
            _via_queue(batches, gallery, opts, collect, summary, timeout)
        else:
            for batch in batches:
                results = tasks.register(ctx, batch, gallery, opts, "build_database")
                collect([{**r, "external_id": p["external_id"]} for r, p in zip(results, batch, strict=True)])
    summary.seconds = time.perf_counter() - started
    return summary


def _via_queue(
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
    batch_of = {_submit_patiently(batch, args, deadline): batch for batch in batches}
    pending = set(batch_of)
    resubmitted = 0
    for st in client.finished(pending, deadline):
        batch = batch_of.pop(st.id)
        if st.state == "SUCCESS":
            collect([{**r, "external_id": p["external_id"]} for r, p in zip(st.result, batch, strict=True)])
        elif st.broker_lost and resubmitted < len(batches):
            resubmitted += 1
            tid = _submit_patiently(batch, args, deadline)
            batch_of[tid] = batch
            pending.add(tid)
        else:
            summary.failures.append(f"task {st.id}: {st.error or st.state}")
    summary.failures += [f"task {tid}: not finished after {timeout:.0f} s" for tid in pending]


def _submit_patiently(batch: list[dict[str, Any]], args: tuple[Any, ...], deadline: float) -> str:
    """Submit, waiting out a broker outage until the deadline (then the clear QueueUnavailable error)."""
    while True:
        try:
            return client.submit("bulk_register", batch, *args)
        except client.QueueUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def search(
    ctx: ServiceContext,
    plans: Sequence[PersonPlan],
    gallery: str,
    chunk: int,
    use_queue: bool,
    top_k: int = 5,
) -> list[dict[str, Any]]:
    """Each held-out image's ranked persons: [{"name", "expected", "ranked": [[external_id, sim]], "error"}]."""
    items = [(payloads.from_path(path, f"{p.folder}/{path.name}"), p.external_id) for p in plans for path in p.probes]
    expected = {payload["name"]: ext for payload, ext in items}
    batches = chunks([payload for payload, _ in items], chunk)
    out: list[dict[str, Any]] = []
    with tqdm(total=len(items), desc="evaluate", unit="img") as bar:
        if use_queue:
            pending = {client.submit("search_batch", b, gallery, top_k) for b in batches}
            for st in client.finished(pending, time.monotonic() + SEARCH_TIMEOUT_S):
                if st.state != "SUCCESS":
                    raise RuntimeError(f"search task {st.id} failed: {st.error or st.state}")
                out += st.result
                bar.update(len(st.result))
            if pending:
                raise RuntimeError(f"{len(pending)} search task(s) not finished after {SEARCH_TIMEOUT_S} s")
        else:
            for b in batches:
                out += rank_primary_faces(ctx, [payloads.read(i) for i in b], gallery, top_k)
                bar.update(len(b))
    return [{**r, "expected": expected[r["name"]]} for r in out]
