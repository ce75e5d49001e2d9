"""Tests for model.evaluation.metrics on small, hand-computable examples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from model.evaluation.metrics import (
    MetricError,
    accuracy_at,
    best_accuracy_threshold,
    detection_identification_rate,
    equal_error_rate,
    false_accept_rate,
    kfold_accuracy,
    open_set_threshold,
    rank_identities,
    roc_auc,
    roc_curve,
    tar_at_far,
    top_k_accuracy,
)


def pairs(genuine: list[float], impostor: list[float]) -> tuple[list[float], list[int]]:
    return genuine + impostor, [1] * len(genuine) + [0] * len(impostor)


def mann_whitney(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """P(genuine > impostor) + 0.5 P(tie), by brute force over all pairs."""
    g, i = genuine[:, None], impostor[None, :]
    return float(((g > i) + 0.5 * (g == i)).mean())


# --- ROC ------------------------------------------------------------------------------------


def test_roc_curve_endpoints_and_ties_move_together() -> None:
    roc = roc_curve([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])
    np.testing.assert_array_equal(roc.thresholds, [np.inf, 0.9, 0.5, 0.1])
    np.testing.assert_array_equal(roc.far, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(roc.tar, [0.0, 0.5, 1.0, 1.0])


def test_roc_curve_is_independent_of_input_order() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(50), 1)
    labels = np.arange(50) % 2
    perm = rng.permutation(50)
    a, b = roc_curve(scores, labels), roc_curve(scores[perm], labels[perm])
    np.testing.assert_array_equal(a.far, b.far)
    np.testing.assert_array_equal(a.tar, b.tar)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)


def test_roc_auc_perfect_and_reversed() -> None:
    assert roc_auc(*pairs([0.8, 0.9, 0.7], [0.1, 0.2])) == 1.0
    assert roc_auc(*pairs([0.1, 0.2], [0.8, 0.9, 0.7])) == 0.0


def test_roc_auc_identical_distributions_is_about_half() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=4000)
    labels = np.arange(4000) % 2
    assert roc_auc(scores, labels) == pytest.approx(0.5, abs=0.04)


def test_roc_auc_equals_mann_whitney_by_hand() -> None:
    # Pairs won: 0.9 -> 3; 0.5 -> 2 + tie 0.5; 0.3 -> 1.  Total 6.5 of 9.
    assert roc_auc(*pairs([0.9, 0.5, 0.3], [0.5, 0.4, 0.1])) == pytest.approx(6.5 / 9)


def test_roc_auc_equals_mann_whitney_with_many_ties() -> None:
    rng = np.random.default_rng(7)
    genuine = np.round(rng.normal(0.6, 0.2, 60), 1)
    impostor = np.round(rng.normal(0.4, 0.2, 80), 1)
    scores, labels = pairs(genuine.tolist(), impostor.tolist())
    assert roc_auc(scores, labels) == pytest.approx(mann_whitney(genuine, impostor))


# --- EER, TAR@FAR, best threshold -----------------------------------------------------------


@pytest.mark.parametrize(
    ("genuine", "impostor", "eer", "threshold"),
    [
        # FAR = FRR = 1/4 at threshold 0.6.
        ([0.9, 0.8, 0.7, 0.4], [0.6, 0.3, 0.2, 0.1], 0.25, 0.6),
        # FRR falls 0.5 -> 0 while FAR stays 0.25: they cross at 0.25.
        ([0.9, 0.5], [0.6, 0.4, 0.3, 0.2], 0.25, 0.5),
        # Separable: no error at the lowest genuine score.
        ([0.9, 0.8], [0.2, 0.1], 0.0, 0.8),
    ],
)
def test_equal_error_rate(genuine: list[float], impostor: list[float], eer: float, threshold: float) -> None:
    got_eer, got_thr = equal_error_rate(*pairs(genuine, impostor))
    assert got_eer == pytest.approx(eer)
    assert got_thr == pytest.approx(threshold)


TAR_GENUINE = [0.9, 0.8, 0.7, 0.4]
TAR_IMPOSTOR = [0.85, 0.75, 0.2, 0.1]  # 4 impostors: the finest FAR is 1/4


@pytest.mark.parametrize(
    ("far", "tar", "threshold"),
    [
        (0.25, 0.5, 0.8),  # accept >= 0.8: genuine 0.9, 0.8; impostor 0.85
        (0.3, 0.5, 0.8),
        (0.5, 1.0, 0.4),  # accept >= 0.4: all genuine; impostors 0.85, 0.75
        (1.0, 1.0, 0.1),
    ],
)
def test_tar_at_far(far: float, tar: float, threshold: float) -> None:
    scores, labels = pairs(TAR_GENUINE, TAR_IMPOSTOR)
    got_tar, got_thr = tar_at_far(scores, labels, far)
    assert (got_tar, got_thr) == pytest.approx((tar, threshold))
    # The threshold really gives these rates.
    s, y = np.array(scores), np.array(labels, dtype=bool)
    assert (s[y] >= got_thr).mean() == pytest.approx(tar)
    assert (s[~y] >= got_thr).mean() <= far


def test_tar_at_far_refuses_far_finer_than_one_impostor() -> None:
    with pytest.raises(MetricError, match="impostor pairs"):
        tar_at_far(*pairs(TAR_GENUINE, TAR_IMPOSTOR), far=0.2)


def test_tar_at_far_zero_raises_metric_error() -> None:
    with pytest.raises(MetricError, match="positive"):
        tar_at_far(*pairs(TAR_GENUINE, TAR_IMPOSTOR), far=0.0)


def test_best_accuracy_threshold_separable() -> None:
    scores, labels = pairs([0.7, 0.9], [0.1, 0.3])
    acc, thr = best_accuracy_threshold(scores, labels)
    assert acc == 1.0
    assert 0.3 < thr < 0.7
    assert thr == pytest.approx(0.5)
    assert accuracy_at(scores, labels, thr) == 1.0


def test_best_accuracy_threshold_overlapping_by_hand() -> None:
    # Accept >= 0.9: 3 of 4 right (ties with >= 0.4, the first maximum wins); midway to 0.5.
    acc, thr = best_accuracy_threshold(*pairs([0.9, 0.4], [0.5, 0.1]))
    assert acc == pytest.approx(0.75)
    assert thr == pytest.approx(0.7)


def test_accuracy_at_is_inclusive() -> None:
    assert accuracy_at([0.5, 0.4], [1, 0], 0.5) == 1.0
    assert accuracy_at([0.5, 0.4], [1, 0], 0.50001) == 0.5


# --- k-fold ---------------------------------------------------------------------------------


def test_kfold_threshold_is_chosen_on_the_other_folds() -> None:
    # Fold 0 alone is best split at 0.5; fold 1 alone at 0.4.  Each fold is perfectly separable
    # on its own, so a leak of the test fold into the choice would give 1.0 for both.
    scores = [0.8, 0.9, 0.1, 0.2, 0.45, 0.6, 0.3, 0.35]
    labels = [1, 1, 0, 0, 1, 1, 0, 0]
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    result = kfold_accuracy(scores, labels, folds)
    assert result.thresholds == pytest.approx([0.4, 0.5])
    # Fold 0 at 0.4: all right.  Fold 1 at 0.5: genuine 0.45 is rejected, 3 of 4.
    assert result.accuracies == pytest.approx([1.0, 0.75])
    assert result.mean == pytest.approx(0.875)
    assert result.std == pytest.approx(0.125)


def test_kfold_needs_two_folds() -> None:
    with pytest.raises(MetricError, match="2 folds"):
        kfold_accuracy([0.9, 0.1], [1, 0], [0, 0])


# --- identification -------------------------------------------------------------------------


def test_rank_identities_takes_max_per_person() -> None:
    gallery = ["bob", "alice", "bob", "carol"]
    sim = [
        [0.2, 0.5, 0.9, 0.1],
        [0.8, 0.3, 0.1, 0.6],
        [0.1, 0.7, 0.2, 0.4],
    ]
    ranked, scores = rank_identities(sim, gallery)
    assert ranked == [["bob", "alice", "carol"], ["bob", "carol", "alice"], ["alice", "carol", "bob"]]
    np.testing.assert_allclose(scores, [[0.9, 0.5, 0.1], [0.8, 0.6, 0.3], [0.7, 0.4, 0.2]])


def test_top_k_accuracy() -> None:
    ranked = [["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"], ["a", "c", "b"]]
    truth = ["a", "a", "a", "b"]
    assert top_k_accuracy(ranked, truth, ks=(1, 2, 3)) == pytest.approx({1: 0.25, 2: 0.5, 3: 1.0})


@pytest.mark.parametrize(("ranked", "truth"), [([["a"]], ["a", "b"]), ([], [])])
def test_top_k_accuracy_refuses_bad_input(ranked: list[list[str]], truth: list[str]) -> None:
    with pytest.raises(MetricError):
        top_k_accuracy(ranked, truth)


def test_open_set_threshold_by_hand() -> None:
    unknown = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    thr = open_set_threshold(unknown, 0.2)
    assert false_accept_rate(unknown, thr) == pytest.approx(0.2)
    # It is the lowest such threshold: 0.8 itself would accept 3 of 10.
    assert 0.8 < thr <= 0.8 + 1e-12
    assert false_accept_rate(unknown, 0.8) == pytest.approx(0.3)


def test_open_set_threshold_with_ties_stays_under_target() -> None:
    unknown = [0.5, 0.5, 0.5, 0.1]
    thr = open_set_threshold(unknown, 0.5)
    assert false_accept_rate(unknown, thr) == 0.0


@pytest.mark.parametrize("target", [0.001, 0.01, 0.05, 0.1])
def test_open_set_threshold_meets_target_on_random_scores(target: float) -> None:
    unknown = np.random.default_rng(5).normal(0.3, 0.1, 1000)
    thr = open_set_threshold(unknown, target)
    # Continuous scores have no ties, so exactly target * n unknowns stay accepted.
    assert false_accept_rate(unknown, thr) == pytest.approx(target)
    assert false_accept_rate(unknown, np.nextafter(thr, -np.inf)) > target


def test_open_set_threshold_refuses_too_fine_target() -> None:
    with pytest.raises(MetricError, match="unknown probes"):
        open_set_threshold([0.1] * 10, 0.05)
    with pytest.raises(MetricError, match="unknown probes"):
        open_set_threshold([], 0.1)


def test_open_set_threshold_zero_target_raises_metric_error() -> None:
    with pytest.raises(MetricError, match="positive"):
        open_set_threshold([0.1, 0.2, 0.3], 0.0)


def test_open_set_threshold_full_target_accepts_everything() -> None:
    unknown = [0.1, 0.2, 0.3]
    assert false_accept_rate(unknown, open_set_threshold(unknown, 1.0)) == 1.0


def test_false_accept_rate() -> None:
    assert false_accept_rate([0.1, 0.5, 0.7, 0.9], 0.5) == pytest.approx(0.75)
    assert false_accept_rate([0.1, 0.5, 0.7, 0.9], 0.95) == 0.0
    assert false_accept_rate([], 0.5) == 0.0


def test_detection_identification_rate_needs_right_id_and_score() -> None:
    top1_ids = ["a", "b", "c", "d", "e"]
    top1_scores = [0.9, 0.9, 0.4, 0.6, 0.5]
    truth = ["a", "x", "c", "d", "e"]
    # a: hit; b: wrong id; c: right but under; d: hit; e: right and exactly at the threshold.
    assert detection_identification_rate(top1_ids, top1_scores, truth, 0.5) == pytest.approx(3 / 5)
    assert detection_identification_rate([], [], [], 0.5) == 0.0


# --- input checks ---------------------------------------------------------------------------

CHECKED: list[Callable[..., Any]] = [roc_curve, roc_auc, equal_error_rate, best_accuracy_threshold]


@pytest.mark.parametrize("fn", CHECKED)
@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2, 0.3], [1, 0], "3 scores but 2 labels"),
        ([0.1, 0.2], [1, 1], "both genuine and impostor"),
        ([0.1, 0.2], [0, 0], "both genuine and impostor"),
        ([0.1, float("nan")], [1, 0], "NaN"),
        ([float("inf"), 0.2], [1, 0], "infinity"),
    ],
)
def test_check_refuses_bad_input(fn: Callable[..., Any], scores: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(MetricError, match=message):
        fn(scores, labels)


def test_tar_at_far_checks_input() -> None:
    with pytest.raises(MetricError, match="NaN"):
        tar_at_far([0.1, float("nan"), 0.3], [1, 0, 0], 0.5)


def test_metric_error_is_a_value_error() -> None:
    assert issubclass(MetricError, ValueError)
