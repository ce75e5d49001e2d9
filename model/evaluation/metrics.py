"""Verification and identification metrics on similarity scores (higher = more alike).

Conventions: `labels` are 1 for genuine (same person) pairs and 0 for impostor pairs; a pair is
accepted when its score is >= the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from model.errors import FaceregError

Scores = npt.NDArray[np.float64]


class MetricError(FaceregError, ValueError):
    """A metric asked of data that cannot support it."""

    code = "invalid_metric_input"


def _check(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[Scores, npt.NDArray[np.bool_]]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise MetricError(f"{s.size} scores but {y.size} labels")
    if not y.any() or y.all():
        raise MetricError("both genuine and impostor pairs are needed")
    if not np.isfinite(s).all():
        raise MetricError("scores contain NaN or infinity")
    return s, y


@dataclass(frozen=True, slots=True)
class Roc:
    far: Scores  # false accept rate at each threshold, increasing
    tar: Scores  # true accept rate at each threshold
    thresholds: Scores  # decreasing; thresholds[0] = +inf accepts nothing


def roc_curve(scores: npt.ArrayLike, labels: npt.ArrayLike) -> Roc:
    s, y = _check(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # Cut only where the score changes, so tied scores move together.
    cuts = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(y)[cuts]
    fp = np.cumsum(~y)[cuts]
    return Roc(
        far=np.r_[0.0, fp / (~y).sum()],
        tar=np.r_[0.0, tp / y.sum()],
        thresholds=np.r_[np.inf, s[cuts]],
    )


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    roc = roc_curve(scores, labels)
    return float(np.trapezoid(roc.tar, roc.far))


def equal_error_rate(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """(EER, threshold): where the false accept and false reject rates cross (interpolated)."""
    roc = roc_curve(scores, labels)
    frr = 1.0 - roc.tar
    diff = roc.far - frr  # increasing from -1 to +1
    i = int(np.argmax(diff >= 0))
    if i == 0:
        return float(roc.far[0]), float(roc.thresholds[0])
    d0, d1 = diff[i - 1], diff[i]
    t = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    eer = roc.far[i - 1] + t * (roc.far[i] - roc.far[i - 1])
    return float(eer), float(roc.thresholds[i])


def tar_at_far(scores: npt.ArrayLike, labels: npt.ArrayLike, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the highest threshold-free FAR <= `far`.

    Refuses a FAR finer than one impostor pair: with N impostors the smallest non-zero FAR
    is 1/N, and a TAR "at" a finer FAR would be a number the data cannot support.
    """
    s, y = _check(scores, labels)
    negatives = int((~y).sum())
    if far <= 0:
        raise MetricError(f"FAR must be positive, got {far:g}")
    if far < 1.0 / negatives:
        raise MetricError(f"FAR {far:g} needs at least {int(np.ceil(1 / far))} impostor pairs; there are {negatives}")
    roc = roc_curve(s, y)
    i = int(np.flatnonzero(roc.far <= far + 1e-12)[-1])
    return float(roc.tar[i]), float(roc.thresholds[i])


def best_accuracy_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """(accuracy, threshold) maximising accuracy; the threshold sits midway between scores."""
    s, y = _check(scores, labels)
    roc = roc_curve(s, y)
    pos, neg = int(y.sum()), int((~y).sum())
    correct = roc.tar * pos + (1.0 - roc.far) * neg
    i = int(np.argmax(correct))
    thr = roc.thresholds[i]
    below = s[s < thr]
    if np.isfinite(thr) and below.size:
        thr = (thr + below.max()) / 2.0
    elif not np.isfinite(thr):
        thr = s.max() + 1e-6
    return float(correct[i] / s.size), float(thr)


def accuracy_at(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    return float(((s >= threshold) == y).mean())


@dataclass(frozen=True, slots=True)
class KFoldResult:
    accuracies: list[float]
    thresholds: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


def kfold_accuracy(scores: npt.ArrayLike, labels: npt.ArrayLike, folds: npt.ArrayLike) -> KFoldResult:
    """The LFW protocol: for each fold, the threshold is chosen on the other folds."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    f = np.asarray(folds)
    fold_ids = sorted(set(f.tolist()))
    if len(fold_ids) < 2:
        raise MetricError("k-fold accuracy needs at least 2 folds")
    accs, thrs = [], []
    for k in fold_ids:
        test = f == k
        _, thr = best_accuracy_threshold(s[~test], y[~test])
        accs.append(accuracy_at(s[test], y[test], thr))
        thrs.append(thr)
    return KFoldResult(accs, thrs)


def rank_identities(similarity: npt.ArrayLike, gallery_ids: Sequence[str]) -> tuple[list[list[str]], Scores]:
    """Per probe, gallery identities ranked by their best-matching face; and the sorted scores.

    similarity: (probes, gallery faces). A person with several faces counts once, by the max.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    ids = np.asarray(gallery_ids)
    persons, inverse = np.unique(ids, return_inverse=True)
    per_person = np.full((sim.shape[0], persons.size), -np.inf)
    for j in range(persons.size):
        per_person[:, j] = sim[:, inverse == j].max(axis=1)
    order = np.argsort(-per_person, axis=1, kind="mergesort")
    ranked = [[str(persons[j]) for j in row] for row in order]
    return ranked, np.take_along_axis(per_person, order, axis=1)


def top_k_accuracy(
    ranked: Sequence[Sequence[str]], truth: Sequence[str], ks: Sequence[int] = (1, 3, 5)
) -> dict[int, float]:
    if len(ranked) != len(truth) or not truth:
        raise MetricError("top-k needs one ranking per probe and at least one probe")
    return {k: float(np.mean([t in r[:k] for r, t in zip(ranked, truth, strict=True)])) for k in ks}


def open_set_threshold(unknown_best: npt.ArrayLike, target_fpir: float) -> float:
    """The lowest threshold at which at most `target_fpir` of unknown probes are accepted."""
    s = np.sort(np.asarray(unknown_best, dtype=np.float64))[::-1]
    if s.size == 0:
        raise MetricError("calibration needs unknown probes")
    if target_fpir <= 0:
        raise MetricError(f"the target FPIR must be positive, got {target_fpir:g}")
    if target_fpir >= 1.0:
        return float(s[-1])  # everything may be accepted
    if target_fpir < 1.0 / s.size:
        raise MetricError(
            f"FPIR {target_fpir:g} needs at least {int(np.ceil(1 / target_fpir))} unknown probes; there are {s.size}"
        )
    allowed = int(np.floor(target_fpir * s.size))
    # Accept strictly above the (allowed+1)-th highest unknown score.
    return float(np.nextafter(s[allowed], np.inf))


def false_accept_rate(unknown_best: npt.ArrayLike, threshold: float) -> float:
    """Open-set FPIR: the fraction of unknown probes whose best match reaches the threshold."""
    s = np.asarray(unknown_best, dtype=np.float64)
    return float((s >= threshold).mean()) if s.size else 0.0


def detection_identification_rate(
    top1_ids: Sequence[str], top1_scores: npt.ArrayLike, truth: Sequence[str], threshold: float
) -> float:
    """Open-set rank-1 rate: known probes whose top match is right *and* above the threshold."""
    sc = np.asarray(top1_scores, dtype=np.float64)
    hits = [(p == t) and s >= threshold for p, s, t in zip(top1_ids, sc, truth, strict=True)]
    return float(np.mean(hits)) if hits else 0.0
