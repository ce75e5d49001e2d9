"""Gallery evaluation through the real services: enroll the split's enroll images, search its probes.

Unlike `evaluation.evaluate_identification` (pure pipeline + numpy), this goes through MongoDB,
ChromaDB and the enrollment rules, so it measures what the deployed system will do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from model.errors import FaceregError
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

CHUNK = 64
CHUNK_BYTES = 128 * 1024**2  # the encoded probes held at once
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SplitRow:
    path: str
    identity: str
    role: str  # enroll | probe | unknown


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
) -> tuple[list[tuple[SplitRow, list[str], list[float]]], dict[str, str]]:
    """(probe, ranked external ids, their similarities) for each probe that produced a face; and failures
    (a probe that cannot be read under the input roots is one)."""
    roots = input_roots(ctx) if roots is None else roots
    g = ensure_gallery(ctx, gallery)
    out: list[tuple[SplitRow, list[str], list[float]]] = []
    failures: dict[str, str] = {}
    names = {d["_id"]: d["external_id"] for d in ctx.db.persons.find({"external_id": {"$regex": f"^{gallery}/"}})}
    done = 0
    for batch in tqdm(_batches(ctx, root, rows, roots), desc="probe", unit="batch"):
        readable = [(r, data) for r, data in batch if isinstance(data, bytes)]
        embedded = iter(ctx.pipeline.embed_primary_many([data for _, data in readable]))
        outcomes = [(r, next(embedded) if isinstance(data, bytes) else data) for r, data in batch]
        failures.update(
            {r.path: f"{type(res).__name__}: {res}" for r, res in outcomes if isinstance(res, FaceregError)}
        )
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


def evaluate_gallery(
    ctx: ServiceContext,
    root: Path,
    rows: Sequence[SplitRow],
    gallery: str,
    ks: Sequence[int] = (1, 3, 5),
    job_id: str | None = None,
    actor: str = "system",
    roots: Sequence[Path] | None = None,
) -> dict[str, Any]:
    """Top-K (closed set) and open-set figures at the gallery's threshold; stored as a job result.

    Images are read only under `roots` (default: `input_roots`); one that is refused counts as a failure."""
    roots = input_roots(ctx) if roots is None else roots
    jid = create_job(
        ctx, "gallery_evaluation", {"root": printable(root), "gallery": gallery, "rows": len(rows)}, actor, job_id
    )
    enrolled = enroll_split(ctx, root, rows, gallery, lambda d, t: set_progress(ctx, jid, d, t * 2), roots)
    g = ensure_gallery(ctx, gallery)
    probes = [r for r in rows if r.role in ("probe", "unknown")]
    searched, failures = search_probes(
        ctx, root, probes, gallery, max(ks), lambda d, t: set_progress(ctx, jid, t + d, t * 2), roots
    )
    known = [(r, ids, sims) for r, ids, sims in searched if r.role == "probe"]
    unknown = [(r, ids, sims) for r, ids, sims in searched if r.role == "unknown"]
    n_known = sum(r.role == "probe" for r in probes)
    # Failed probes count as misses: rank them as nothing.
    ranked = [ids for _, ids, _ in known] + [[] for _ in range(n_known - len(known))]
    truth = [r.identity for r, _, _ in known] + [r.identity for r in probes if r.role == "probe" and r.path in failures]
    topk = metrics.top_k_accuracy(ranked, truth, ks) if truth else {k: 0.0 for k in ks}
    thr = g.identify_threshold
    known_top1 = [
        {
            "probe": printable(r.path),
            "expected": r.identity,
            "predicted": ids[0] if ids else None,
            "similarity": sims[0] if sims else -1.0,
        }
        for r, ids, sims in known
    ]
    result: dict[str, Any] = {
        "gallery": gallery,
        "contract": g.contract,
        **{f"top{k}": v for k, v in topk.items()},
        "n_probes": n_known,
        "n_identities": len({r.identity for r in rows if r.role == "enroll"}),
        "enrollment": enrolled,
        "n_failed": len(failures),
        "identify_threshold": thr,
        "open_set_rank1": rank1_at(known_top1, n_known, thr),
        "failures": [
            {
                "probe": printable(r.path),
                "expected": r.identity,
                "predicted": ids[0] if ids else None,
                "similarity": round(sims[0], 4) if sims else None,
            }
            for r, ids, sims in known
            if not ids or ids[0] != r.identity
        ][:200],
        "scores": mate_scores(known),
        "unknown_best": [s[0] if s else -1.0 for _, _, s in unknown],
        "known_top1": known_top1,
    }
    result["examples"] = _examples(rows, {f[k] for f in result["failures"] for k in ("expected", "predicted")})
    if unknown:
        result["n_unknown"] = len(unknown)
        result["open_set_fpir"] = metrics.false_accept_rate(result["unknown_best"], thr)
    finish_job(ctx, jid, {k: v for k, v in result.items() if k not in ("unknown_best", "known_top1")})
    result["job_id"] = jid
    return result


def rank1_at(known_top1: Sequence[dict[str, Any]], n_probes: int, threshold: float) -> float:
    """Open-set rank-1: probes whose Top-1 is their own person at or above the threshold, over all
    probes (failed probes count as misses)."""
    rate = metrics.detection_identification_rate(
        [k["predicted"] or "" for k in known_top1],
        [k["similarity"] for k in known_top1],
        [k["expected"] for k in known_top1],
        threshold,
    )
    return rate * len(known_top1) / max(n_probes, 1)


def mate_scores(known: Sequence[tuple[SplitRow, list[str], list[float]]]) -> dict[str, list[float]]:
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
