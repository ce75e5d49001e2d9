"""Gallery evaluation through the real services: enroll the split's enroll images, search its probes.

Unlike `model.evaluation.protocols.evaluate_identification` (pure pipeline + numpy), this goes through MongoDB,
ChromaDB and the enrollment rules, so it measures what the deployed system will do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from model.errors import ErrorInfo, FaceregError, error_info
from model.evaluation import metrics
from model.evaluation.protocols import DatasetError
from model.pipeline import FaceEmbedding
from services.context import ServiceContext
from services.registry.enrollment import EnrollOptions, ImageInput, enroll
from services.registry.galleries import ensure_gallery
from services.registry.persons import PersonInput
from services.search.identification import search_vectors
from services.storage.input_paths import printable, read_input
from services.storage.jobs import create_job, finish_job, set_progress
from services.storage.records import Gallery

CHUNK = 64
CHUNK_BYTES = 128 * 1024**2  # the encoded probes held at once
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SplitRow:
    path: str
    identity: str
    role: str  # enroll | probe | unknown


Searched = list[tuple[SplitRow, list[str], list[float]]]  # probe, ranked identities, their similarities


def rows_from_csv(dicts: Sequence[dict[str, str]]) -> list[SplitRow]:
    """Rows of a split CSV; identities become UTF-8-safe text (they are stored), paths stay as given."""
    rows = []
    for line, d in enumerate(dicts, 2):
        if not all(isinstance(d.get(k), str) for k in ("path", "identity", "role")):
            raise DatasetError(f"line {line} of the split lacks a path, identity or role")
        rows.append(SplitRow(d["path"], printable(d["identity"]), d["role"]))
    return rows


def input_roots(ctx: ServiceContext) -> list[Path]:
    """Where an evaluation reads: the allowed input roots, and the data folder (a gallery holdout reads the
    stored photos, a zip uploaded to the dashboard is unpacked there)."""
    return [*ctx.settings.allowed_input_roots, ctx.settings.data_dir.resolve()]


def read_row(ctx: ServiceContext, root: Path, row: SplitRow, roots: Sequence[Path]) -> bytes | FaceregError:
    """The bytes of a row's image, read only under `roots`; a refusal is returned, not raised."""
    try:
        return read_input(root / row.path, roots, ctx.settings.max_image_bytes)
    except FaceregError as exc:
        return exc


def _batches(
    ctx: ServiceContext, root: Path, rows: Sequence[SplitRow], roots: Sequence[Path]
) -> Iterator[list[tuple[SplitRow, bytes | FaceregError]]]:
    """The rows with their bytes, CHUNK at a time and at most about CHUNK_BYTES of images at once."""
    batch: list[tuple[SplitRow, bytes | FaceregError]] = []
    size = 0
    for r in rows:
        data = read_row(ctx, root, r, roots)
        batch.append((r, data))
        size += len(data) if isinstance(data, bytes) else 0
        if len(batch) >= CHUNK or size >= CHUNK_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def enroll_split(
    ctx: ServiceContext,
    root: Path,
    rows: Sequence[SplitRow],
    gallery: str,
    progress: Progress | None = None,
    roots: Sequence[Path] | None = None,
) -> dict[str, int]:
    """Enroll each identity's `enroll` images (idempotent: identities are keyed by external id).

    An image that cannot be read (missing, outside the input roots) counts as rejected; an identity
    with no readable image is not enrolled."""
    roots = input_roots(ctx) if roots is None else roots
    by_identity: dict[str, list[SplitRow]] = defaultdict(list)
    for r in rows:
        if r.role == "enroll":
            by_identity[r.identity].append(r)
    counts = {"persons": 0, "enrolled": 0, "already_enrolled": 0, "rejected": 0}
    opts = EnrollOptions(multi_face="largest", min_quality=ctx.settings.enroll_min_quality)
    for n, (identity, group) in enumerate(tqdm(sorted(by_identity.items()), desc="enroll", unit="person"), 1):
        read = [(r, read_row(ctx, root, r, roots)) for r in group]
        images = [ImageInput(printable(r.path), data) for r, data in read if isinstance(data, bytes)]
        counts["rejected"] += len(read) - len(images)
        if images:
            person = PersonInput(identity, external_id=f"{gallery}/{identity}")
            result = enroll(ctx, person, images, gallery, options=opts)
            counts["persons"] += 1
            for status in ("enrolled", "already_enrolled", "rejected"):
                counts[status] += result.count(status)
        if progress:
            progress(n, len(by_identity))
    return counts


def search_probes(
    ctx: ServiceContext,
    root: Path,
    rows: Sequence[SplitRow],
    gallery: str,
    top_k: int = 5,
    progress: Progress | None = None,
    roots: Sequence[Path] | None = None,
) -> tuple[Searched, dict[str, ErrorInfo]]:
    """(probe, ranked external ids, their similarities) for each probe that produced a face; and failures
    (a probe that cannot be read under the input roots is one)."""
    roots = input_roots(ctx) if roots is None else roots
    g = ensure_gallery(ctx, gallery)
    out: Searched = []
    failures: dict[str, ErrorInfo] = {}
    names = {d["_id"]: d["external_id"] for d in ctx.db.persons.find({"external_id": {"$regex": f"^{gallery}/"}})}
    done = 0
    for batch in tqdm(_batches(ctx, root, rows, roots), desc="probe", unit="batch"):
        readable = [(r, data) for r, data in batch if isinstance(data, bytes)]
        embedded = iter(ctx.pipeline.embed_primary_many([data for _, data in readable]))
        outcomes = [(r, next(embedded) if isinstance(data, bytes) else data) for r, data in batch]
        failures.update({r.path: error_info(res) for r, res in outcomes if isinstance(res, FaceregError)})
        ok = [(r, res) for r, res in outcomes if isinstance(res, FaceEmbedding)]
        if ok:
            hits = search_vectors(ctx, g, np.stack([res.vector for _, res in ok]), top_k)
            for (r, _), row in zip(ok, hits, strict=True):
                ids = [names.get(h.person_id, h.person_id).split("/", 1)[-1] for h in row]
                out.append((r, ids, [h.similarity for h in row]))
        done += len(batch)
        if progress:
            progress(done, len(rows))
    return out, failures


@dataclass(frozen=True, slots=True)
class ProbeTop1:
    """A known probe's first answer: `predicted` None and `similarity` -1 when the search found no one."""

    probe: str
    expected: str
    predicted: str | None
    similarity: float


@dataclass(frozen=True, slots=True)
class GalleryEvaluation:
    """`report`: the public figures (a job's result, the `evaluate` task's result; described field by field by
    workers.messages.EvaluationReport). The open-set scores, for calibration by services.evaluation.open_set:
    each unknown probe's best similarity (-1: no one found) and each known probe's first answer."""

    report: dict[str, Any]
    unknown_best: list[float]
    known_top1: list[ProbeTop1]


def evaluate_gallery(
    ctx: ServiceContext,
    root: Path,
    rows: Sequence[SplitRow],
    gallery: str,
    ks: Sequence[int] = (1, 3, 5),
    job_id: str | None = None,
    actor: str = "system",
    roots: Sequence[Path] | None = None,
) -> GalleryEvaluation:
    """Top-K (closed set) and open-set figures at the gallery's threshold, run as a job: enroll the split's
    enroll rows, search its probes, score them; the job's result is the public report.

    Images are read only under `roots` (default: `input_roots`); one that is refused counts as a failure."""
    roots = input_roots(ctx) if roots is None else roots
    params = {"root": printable(root), "gallery": gallery, "rows": len(rows)}
    jid = create_job(ctx, "gallery_evaluation", params, actor, job_id)
    enrolled = enroll_split(ctx, root, rows, gallery, lambda d, t: set_progress(ctx, jid, d, t * 2), roots)
    probes = [r for r in rows if r.role in ("probe", "unknown")]
    searched, failures = search_probes(
        ctx, root, probes, gallery, max(ks), lambda d, t: set_progress(ctx, jid, t + d, t * 2), roots
    )
    evaluation = score_probes(ensure_gallery(ctx, gallery), rows, searched, failures, ks)
    report = {**evaluation.report, "enrollment": enrolled}
    finish_job(ctx, jid, report)
    return replace(evaluation, report={**report, "job_id": jid})


def score_probes(
    gallery: Gallery, rows: Sequence[SplitRow], searched: Searched, failures: dict[str, ErrorInfo], ks: Sequence[int]
) -> GalleryEvaluation:
    """The figures of a searched split: Top-K over every known probe (a failed one is a miss), open-set
    rank-1 and FPIR at the gallery's 1:N threshold, the misses with example faces, the mate scores."""
    known = [(r, ids, sims) for r, ids, sims in searched if r.role == "probe"]
    unknown_best = [sims[0] if sims else -1.0 for r, _, sims in searched if r.role == "unknown"]
    top1 = [
        ProbeTop1(printable(r.path), r.identity, ids[0] if ids else None, sims[0] if sims else -1.0)
        for r, ids, sims in known
    ]
    n_known = sum(r.role == "probe" for r in rows)
    misses = [_miss(t) for t in top1 if t.predicted != t.expected][:200]
    thr = gallery.identify_threshold
    report: dict[str, Any] = {
        "gallery": gallery.name,
        "contract": gallery.contract,
        **{f"top{k}": v for k, v in _top_k(rows, known, failures, ks).items()},
        "n_probes": n_known,
        "n_identities": len({r.identity for r in rows if r.role == "enroll"}),
        "n_failed": len(failures),
        "identify_threshold": thr,
        "open_set_rank1": rank1_at(top1, n_known, thr),
        "failures": misses,
        "scores": mate_scores(known),
        "examples": _examples(rows, {m[k] for m in misses for k in ("expected", "predicted")}),
    }
    if unknown_best:
        report |= {"n_unknown": len(unknown_best), "open_set_fpir": metrics.false_accept_rate(unknown_best, thr)}
    return GalleryEvaluation(report, unknown_best, top1)


def _top_k(
    rows: Sequence[SplitRow], known: Searched, failures: dict[str, ErrorInfo], ks: Sequence[int]
) -> dict[int, float]:
    """Top-K accuracy of the known probes; a probe that failed (unreadable, no face) is ranked as nothing."""
    failed = [r.identity for r in rows if r.role == "probe" and r.path in failures]
    ranked = [ids for _, ids, _ in known] + [[] for _ in failed]
    truth = [r.identity for r, _, _ in known] + failed
    return metrics.top_k_accuracy(ranked, truth, ks) if truth else {k: 0.0 for k in ks}


def _miss(t: ProbeTop1) -> dict[str, Any]:
    similarity = round(t.similarity, 4) if t.predicted is not None else None
    return {"probe": t.probe, "expected": t.expected, "predicted": t.predicted, "similarity": similarity}


def rank1_at(known_top1: Sequence[ProbeTop1], n_probes: int, threshold: float) -> float:
    """Open-set rank-1: probes whose Top-1 is their own person at or above the threshold, over all
    probes (failed probes count as misses)."""
    rate = metrics.detection_identification_rate(
        [t.predicted or "" for t in known_top1],
        [t.similarity for t in known_top1],
        [t.expected for t in known_top1],
        threshold,
    )
    return rate * len(known_top1) / max(n_probes, 1)


def mate_scores(known: Searched) -> dict[str, list[float]]:
    """Per probe, the similarity of its own identity ("genuine") and of the best other identity ("impostor").
    The impostor scores are what a stranger scores against this gallery, so they calibrate the 1:N
    threshold and, with the genuine ones, draw the ROC. A probe whose own identity is not in its Top-K
    gets -1: no threshold above its K-th score accepts it."""
    genuine, impostor = [], []
    for r, ids, sims in known:
        own = [s for i, s in zip(ids, sims, strict=True) if i == r.identity]
        other = [s for i, s in zip(ids, sims, strict=True) if i != r.identity]
        genuine.append(round(own[0], 5) if own else -1.0)
        if other:
            impostor.append(round(other[0], 5))
    return {"genuine": genuine, "impostor": impostor}


def _examples(rows: Sequence[SplitRow], identities: set[str | None]) -> dict[str, str]:
    """An enroll image of each named identity, to show faces next to the failures."""
    out: dict[str, str] = {}
    for r in rows:
        if r.role == "enroll" and r.identity in identities and r.identity not in out:
            out[r.identity] = printable(r.path)
    return out
