"""Offline evaluations: 1:1 verification on a pairs CSV, and Top-K identification on a split CSV."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from model.embedders.base import Embedder
from model.errors import ErrorInfo, FaceregError, error_info
from model.evaluation import metrics
from model.evaluation.plots import plot_roc, plot_topk
from model.pipeline import FaceEmbedding, FacePipeline
from model.templates import score_persons
from model.types import FloatArray, ImageArray

DEFAULT_FARS = (1e-3, 1e-2, 1e-1)
CHUNK = 64


class DatasetError(FaceregError):
    """A pairs or split file that cannot be used as given."""

    code = "invalid_dataset"


@dataclass(slots=True)
class EmbeddedImages:
    """Primary-face embeddings of a set of image paths; failures kept with their error."""

    vectors: dict[str, FloatArray] = field(default_factory=dict)
    qualities: dict[str, float] = field(default_factory=dict)
    chips: dict[str, ImageArray] = field(default_factory=dict)
    failures: dict[str, ErrorInfo] = field(default_factory=dict)

    def failures_shown(self, n: int = 50) -> dict[str, dict[str, str]]:
        """The first `n` failures for a report: path -> {"code", "message"}."""
        return {path: info.to_dict() for path, info in list(self.failures.items())[:n]}

    fallbacks: int = 0


def read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    return parse_csv(path.read_bytes(), str(path), required)


def parse_csv(data: bytes, source: str, required: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a CSV with the `required` columns; bytes that are not UTF-8 kept as a file name keeps them."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")))
    missing = [c for c in required if not rows or c not in rows[0]]
    if missing:
        raise DatasetError(f"{source}: missing column(s) {', '.join(missing)} (needs {', '.join(required)})")
    return rows


def embed_paths(
    pipeline: FacePipeline,
    root: Path,
    paths: Iterable[str],
    desc: str,
    keep_chips: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddedImages:
    """Embed each image's primary face, in batches, with a progress bar."""
    unique = list(dict.fromkeys(paths))
    out = EmbeddedImages()
    with tqdm(total=len(unique), desc=desc, unit="img") as bar:
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            for rel, result in zip(chunk, pipeline.embed_primary_many([root / p for p in chunk]), strict=True):
                _store(out, rel, result, keep_chips)
            bar.update(len(chunk))
            if progress is not None:
                progress(min(start + CHUNK, len(unique)), len(unique))
    return out


def _store(out: EmbeddedImages, rel: str, result: FaceEmbedding | FaceregError, keep_chips: int) -> None:
    if isinstance(result, FaceregError):
        out.failures[rel] = error_info(result)
        return
    out.vectors[rel] = result.vector
    out.qualities[rel] = result.quality.score
    out.fallbacks += int(result.detection.fallback)
    if len(out.chips) < keep_chips:
        out.chips[rel] = result.chip


def runtime_parity(reference: FloatArray, other: Embedder, chips: Sequence[ImageArray]) -> dict[str, Any]:
    """Cosine between the reference vectors and another runtime's vectors of the same chips."""
    cos = np.sum(reference * other.embed(list(chips)), axis=1)
    return {"runtime": other.runtime, "n": len(chips), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def evaluate_verification(
    pipeline: FacePipeline,
    root: Path,
    pairs_csv: Path,
    out_dir: Path,
    folds: int | Sequence[int] | None = None,
    fars: Sequence[float] = DEFAULT_FARS,
    parity_with: Embedder | None = None,
    parity_n: int = 100,
) -> dict[str, Any]:
    """LFW-style verification report. A pair with a failed image counts as a wrong answer."""
    rows, fold_ids = _select_folds(read_csv(pairs_csv, ("path_a", "path_b", "same")), folds)
    started = time.perf_counter()
    emb = embed_paths(
        pipeline,
        root,
        (p for r in rows for p in (r["path_a"], r["path_b"])),
        "verify",
        keep_chips=parity_n if parity_with else 0,
    )
    scores, labels, ok = _pair_scores(rows, emb)
    report: dict[str, Any] = {
        **pipeline.describe(),
        "n_pairs": len(rows),
        "n_failed": int((~ok).sum()),
        "n_images": len(emb.vectors) + len(emb.failures),
        "n_fallback_images": emb.fallbacks,
        **_fold_report(scores, labels, np.asarray(fold_ids), ok),
        **_curve_report(scores[ok], labels[ok], fars),
    }
    if parity_with is not None and emb.chips:
        keys = list(emb.chips)
        report["runtime_parity"] = runtime_parity(
            np.stack([emb.vectors[k] for k in keys]), parity_with, [emb.chips[k] for k in keys]
        )
    report["failures"] = emb.failures_shown()
    report["seconds"] = round(time.perf_counter() - started, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    roc = metrics.roc_curve(scores[ok], labels[ok])
    plot_roc(roc, out_dir / "roc.png", f"{report['model']} on {pairs_csv.name}", report["roc_auc"])
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _select_folds(
    rows: list[dict[str, str]], folds: int | Sequence[int] | None
) -> tuple[list[dict[str, str]], list[int]]:
    """The pairs with their fold ids; with `folds` K, only the pairs of the first K folds (a quick run); with a
    list of fold ids, only those folds (LFW folds 5-9: the test people of a model trained on the rest).
    The folds kept are cross-validated among themselves."""
    fold_ids = _fold_ids(rows)
    if folds is None:
        return rows, fold_ids
    present = sorted(set(fold_ids))
    wanted = set(present[:folds]) if isinstance(folds, int) else set(folds)
    missing = sorted(wanted - set(present))
    if missing:
        raise DatasetError(f"the pairs have no fold {', '.join(map(str, missing))} (folds: {present[0]}-{present[-1]})")
    if len(wanted) < 2:
        raise DatasetError("--folds needs at least 2 folds (each fold's threshold comes from the others)")
    kept = [(r, f) for r, f in zip(rows, fold_ids, strict=True) if f in wanted]
    return [r for r, _ in kept], [f for _, f in kept]


def _pair_scores(rows: list[dict[str, str]], emb: EmbeddedImages) -> tuple[FloatArray, np.ndarray, np.ndarray]:
    """Each pair's cosine (NaN where an image failed), its same/different label, and whether both embedded."""
    ok = np.array([r["path_a"] in emb.vectors and r["path_b"] in emb.vectors for r in rows])
    labels = np.array([_truthy(r["same"]) for r in rows])
    scores = np.array(
        [
            float(emb.vectors[r["path_a"]] @ emb.vectors[r["path_b"]]) if good else np.nan
            for r, good in zip(rows, ok, strict=True)
        ]
    )
    return scores, labels, ok


def _curve_report(scores: FloatArray, labels: np.ndarray, fars: Sequence[float]) -> dict[str, Any]:
    """The threshold-free figures of the pairs that embedded: ROC AUC, EER and TAR at each FAR."""
    eer, eer_thr = metrics.equal_error_rate(scores, labels)
    return {
        "roc_auc": metrics.roc_auc(scores, labels),
        "eer": eer,
        "eer_threshold": eer_thr,
        "tar_at_far": _tar_at_fars(scores, labels, fars),
    }


def _fold_ids(rows: list[dict[str, str]]) -> list[int]:
    if "fold" in rows[0]:
        return [int(r["fold"]) for r in rows]
    # No folds given: 10 contiguous folds, as View 2's files are laid out.
    return [i * 10 // len(rows) for i in range(len(rows))]


def _fold_report(scores: FloatArray, labels: np.ndarray, folds: np.ndarray, ok: np.ndarray) -> dict[str, Any]:
    # A failed pair gets a score outside the cosine range on its wrong side: wrong at any threshold.
    forced = np.where(ok, scores, np.where(labels, -10.0, 10.0))
    result = metrics.kfold_accuracy(forced, labels, folds)
    return {
        "folds_evaluated": len(result.accuracies),
        "accuracy_mean": result.mean,
        "accuracy_std": result.std,
        "fold_accuracies": result.accuracies,
        "threshold": float(np.mean(result.thresholds)),
    }


def _tar_at_fars(scores: FloatArray, labels: np.ndarray, fars: Sequence[float]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for far in fars:
        try:
            out[f"{far:g}"] = metrics.tar_at_far(scores, labels, far)[0]
        except metrics.MetricError:
            out[f"{far:g}"] = None  # finer than the number of impostor pairs supports
    return out


def _truthy(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "same"):
        return True
    if v in ("0", "false", "no", "different"):
        return False
    raise DatasetError(f"'same' must be 1/0 or true/false, got {value!r}")


def evaluate_identification(
    pipeline: FacePipeline,
    root: Path,
    split_csv: Path,
    out_dir: Path,
    ks: Sequence[int] = (1, 3, 5),
    template_weight: float = 0.0,
) -> dict[str, Any]:
    """Closed-set Top-K on an enroll/probe split; failed probes count as misses. Persons are scored as the
    services score them (model.templates, `template_weight` on the template, the rest on the best face)."""
    rows = read_csv(split_csv, ("path", "identity", "role"))
    enroll = [r for r in rows if r["role"] == "enroll"]
    probes = [r for r in rows if r["role"] == "probe"]
    if not enroll or not probes:
        raise DatasetError(f"{split_csv}: needs rows with role 'enroll' and role 'probe'")
    started = time.perf_counter()
    emb = embed_paths(pipeline, root, [r["path"] for r in enroll + probes], "identify")
    gallery = [r for r in enroll if r["path"] in emb.vectors]
    if not gallery:
        raise DatasetError("no enrollment image produced an embedding")
    found = [r for r in probes if r["path"] in emb.vectors]
    persons, scores = score_persons(
        np.stack([emb.vectors[r["path"]] for r in found]) if found else np.zeros((0, pipeline.spec.dim), np.float32),
        np.stack([emb.vectors[r["path"]] for r in gallery]),
        [r["identity"] for r in gallery],
        [emb.qualities[r["path"]] for r in gallery],
        template_weight,
    )
    ranked, ranked_scores = metrics.rank_identities(scores, persons)
    # Failed probes are ranked as nothing: they count against every Top-K.
    ranked_all = ranked + [[] for _ in range(len(probes) - len(found))]
    truth = [r["identity"] for r in found] + [r["identity"] for r in probes if r["path"] not in emb.vectors]
    topk = metrics.top_k_accuracy(ranked_all, truth, ks)
    misses = [
        {"probe": r["path"], "expected": r["identity"], "predicted": rk[0], "similarity": float(sc[0])}
        for r, rk, sc in zip(found, ranked, ranked_scores, strict=True)
        if rk[0] != r["identity"]
    ]
    report: dict[str, Any] = {
        **pipeline.describe(),
        **{f"top{k}": v for k, v in topk.items()},
        "template_weight": template_weight,
        "n_probes": len(probes),
        "n_identities": len({r["identity"] for r in enroll}),
        "n_enrolled_faces": len(gallery),
        "n_failed": len(emb.failures),
        "n_fallback_images": emb.fallbacks,
        "top1_misses": misses[:100],
        "failures": emb.failures_shown(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_topk(topk, out_dir / "topk.png", f"{report['model']} on {split_csv.name}")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report
