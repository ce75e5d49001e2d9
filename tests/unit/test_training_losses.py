"""Margin heads and metric losses of model.training against values computed by hand.

The heads' class weights lie at angles 0, pi/2 and pi (norms 2, 3, 1: the head normalises them), so an
embedding at angle a has cosines (cos a, sin a, -cos a) to the three classes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model.errors import TrainingError
from model.training.heads import (
    HEADS,
    ArcFaceHead,
    CombinedMarginHead,
    CosFaceHead,
    MarginHead,
    SphereFaceHead,
    build_head,
)
from model.training.losses import batch_hard_triplet_loss, contrastive_loss

torch.set_num_threads(1)

WEIGHT = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
HALF_PI = math.pi / 2


def at(*angles: float) -> torch.Tensor:
    """Embeddings of norm 5 at the given angles (radians)."""
    return torch.tensor([[5 * math.cos(a), 5 * math.sin(a)] for a in angles])


def logits(head: MarginHead, angles: tuple[float, ...], labels: list[int]) -> torch.Tensor:
    head.weight.data = WEIGHT.clone()
    return head(at(*angles), torch.tensor(labels))


def expect(actual: torch.Tensor, rows: list[list[float]]) -> None:
    torch.testing.assert_close(actual, torch.tensor(rows), rtol=1e-5, atol=1e-5)


# --- ArcFace ----------------------------------------------------------------------------------


def test_arcface_normal_and_threshold_branches() -> None:
    s, m = 2.0, 0.5
    out = logits(ArcFaceHead(2, 3, s=s, m=m), (0.3, -0.3, 0.3), [0, 1, 2])
    expect(
        out,
        [
            [s * math.cos(0.3 + m), s * math.sin(0.3), -s * math.cos(0.3)],  # theta = 0.3
            [s * math.cos(-0.3), s * math.cos(HALF_PI + 0.3 + m), -s * math.cos(-0.3)],  # theta = pi/2 + 0.3
            # theta = pi - 0.3, theta + m > pi: cos(theta) - sin(pi - m) * m
            [s * math.cos(0.3), s * math.sin(0.3), s * (-math.cos(0.3) - math.sin(math.pi - m) * m)],
        ],
    )


def test_arcface_easy_margin_keeps_negative_cosines() -> None:
    s, m = 2.0, 0.5
    out = logits(ArcFaceHead(2, 3, s=s, m=m, easy_margin=True), (0.3, -0.3, 0.3), [0, 1, 2])
    expect(
        out,
        [
            [s * math.cos(0.3 + m), s * math.sin(0.3), -s * math.cos(0.3)],
            [s * math.cos(-0.3), s * math.sin(-0.3), -s * math.cos(-0.3)],
            [s * math.cos(0.3), s * math.sin(0.3), -s * math.cos(0.3)],
        ],
    )


def test_arcface_zero_margin_is_plain_normalised_softmax() -> None:
    s = 3.0
    head = ArcFaceHead(2, 3, s=s, m=0.0)
    out = logits(head, (0.3, math.pi), [0, 0])  # the second at cos = -1 exactly (the fallback branch)
    expect(out, [[s * math.cos(0.3), s * math.sin(0.3), -s * math.cos(0.3)], [-s, 0.0, s]])
    generator = torch.Generator().manual_seed(0)
    embeddings, labels = torch.randn(8, 2, generator=generator), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    plain = s * F.normalize(embeddings) @ F.normalize(WEIGHT).T
    assert torch.equal(head(embeddings, labels), plain)


def test_set_margin_takes_effect_at_the_next_forward() -> None:
    head = ArcFaceHead(2, 3, s=10.0, m=0.0)
    head.set_margin(2.0, 0.5)
    assert (head.s, head.m) == (2.0, 0.5)
    expect(logits(head, (0.3,), [0]), [[2.0 * math.cos(0.8), 2.0 * math.sin(0.3), -2.0 * math.cos(0.3)]])


# --- CosFace, SphereFace, combined -------------------------------------------------------------


def test_cosface_subtracts_the_margin_from_the_target_cosine() -> None:
    s, m = 3.0, 0.35
    out = logits(CosFaceHead(2, 3, s=s, m=m), (0.3, 0.3), [0, 2])
    expect(
        out,
        [
            [s * (math.cos(0.3) - m), s * math.sin(0.3), -s * math.cos(0.3)],
            [s * math.cos(0.3), s * math.sin(0.3), s * (-math.cos(0.3) - m)],
        ],
    )


def test_sphereface_psi_in_three_angle_intervals() -> None:
    # m = 4: the intervals are [k pi/4, (k+1) pi/4]; theta 0.3 -> k = 0, 1.0 -> k = 1, pi/2 + 0.3 -> k = 2
    out = logits(SphereFaceHead(2, 3, s=1.0, m=4), (0.3, 1.0, -0.3), [0, 0, 1])
    theta = HALF_PI + 0.3
    expect(
        out,
        [
            [math.cos(4 * 0.3), math.sin(0.3), -math.cos(0.3)],
            [-math.cos(4 * 1.0) - 2, math.sin(1.0), -math.cos(1.0)],
            [math.cos(-0.3), math.cos(4 * theta) - 4, -math.cos(-0.3)],
        ],
    )


def test_sphereface_annealing_lambda_mixes_in_the_plain_cosine() -> None:
    head = SphereFaceHead(2, 3, s=1.0, m=4, lam=3.0)
    out = logits(head, (1.0,), [0])
    expect(out, [[(3.0 * math.cos(1.0) + (-math.cos(4.0) - 2)) / 4.0, math.sin(1.0), -math.cos(1.0)]])


def test_combined_margin_reduces_to_arcface_and_cosface() -> None:
    s = 2.0
    arc = logits(CombinedMarginHead(2, 3, s=s, m1=1.0, m2=0.5, m3=0.0), (0.3, 0.3), [0, 2])
    expect(
        arc,
        [
            [s * math.cos(0.8), s * math.sin(0.3), -s * math.cos(0.3)],
            [s * math.cos(0.3), s * math.sin(0.3), s * (-math.cos(0.3) - math.sin(math.pi - 0.5) * 0.5)],
        ],
    )
    cos = logits(CombinedMarginHead(2, 3, s=s, m1=1.0, m2=0.0, m3=0.35), (0.3,), [0])
    expect(cos, [[s * (math.cos(0.3) - 0.35), s * math.sin(0.3), -s * math.cos(0.3)]])


def test_combined_margin_with_a_multiplicative_part() -> None:
    head = CombinedMarginHead(2, 3, s=1.0, m1=2.0, m2=0.1, m3=0.2)
    out = logits(head, (0.3, 1.0), [0, 0])
    expect(
        out,
        [
            [math.cos(2 * 0.3 + 0.1) - 0.2, math.sin(0.3), -math.cos(0.3)],
            [math.cos(2 * 1.0 + 0.1) - 0.2, math.sin(1.0), -math.cos(1.0)],
        ],
    )
    head.set_margin(1.0, 0.3)
    assert head.m2 == 0.3
    expect(head(at(0.3), torch.tensor([0])), [[math.cos(0.9) - 0.2, math.sin(0.3), -math.cos(0.3)]])


@pytest.mark.parametrize(
    "head",
    [
        ArcFaceHead(2, 3),
        ArcFaceHead(2, 3, easy_margin=True),
        CosFaceHead(2, 3),
        SphereFaceHead(2, 3, lam=1.0),
        CombinedMarginHead(2, 3, m1=1.0, m2=0.5, m3=0.2),
        CombinedMarginHead(2, 3, m1=1.5, m2=0.2, m3=0.1),
    ],
    ids=lambda head: type(head).__name__,
)
def test_gradients_are_finite_where_the_cosine_is_exactly_one(head: MarginHead) -> None:
    head.weight.data = WEIGHT.clone()
    # each embedding equals (up to norm) a class weight: cos = 1 to its own class, -1 to the opposite one
    embeddings = torch.tensor([[2.0, 0.0], [0.0, -3.0], [-1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 0, 1])
    out = head(embeddings, labels)
    assert out[0, 0].abs() > 0  # cos = 1 reached the margin function
    F.cross_entropy(out, labels).backward()
    assert embeddings.grad is not None and head.weight.grad is not None
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(head.weight.grad).all()


# --- building and errors ------------------------------------------------------------------------


def test_build_head_by_name() -> None:
    head = build_head("combined", 4, 7, 30.0, 0.4)
    assert isinstance(head, CombinedMarginHead)
    assert (head.s, head.m2, head.m1, head.m3, tuple(head.weight.shape)) == (30.0, 0.4, 1.0, 0.0, (7, 4))
    assert isinstance(build_head("sphereface", 4, 7, 30.0, 2.0), SphereFaceHead)
    assert set(HEADS) == {"arcface", "cosface", "sphereface", "combined"}


def test_unknown_head_lists_the_choices() -> None:
    with pytest.raises(TrainingError, match="arcface, cosface, sphereface, combined"):
        build_head("softmax", 4, 7, 64.0, 0.5)


@pytest.mark.parametrize(("s", "m"), [(0.0, 0.5), (64.0, -0.1), (math.nan, 0.5), (64.0, math.inf)])
def test_bad_scale_or_margin(s: float, m: float) -> None:
    with pytest.raises(TrainingError):
        ArcFaceHead(2, 3, s=s, m=m)


@pytest.mark.parametrize("m", [2.5, 0.0, math.nan])
def test_sphereface_needs_an_integer_margin(m: float) -> None:
    with pytest.raises(TrainingError, match="integer margin"):
        SphereFaceHead(2, 3, m=m)


@pytest.mark.parametrize(
    "labels", [torch.tensor([0, 3]), torch.tensor([-1, 0]), torch.tensor([0, 1], dtype=torch.int32), torch.tensor([0])]
)
def test_bad_labels(labels: torch.Tensor) -> None:
    with pytest.raises(TrainingError, match="labels"):
        ArcFaceHead(2, 3)(at(0.1, 0.2), labels)


def test_embeddings_of_the_wrong_width() -> None:
    with pytest.raises(TrainingError, match=r"\(batch, 2\)"):
        ArcFaceHead(2, 3)(torch.zeros(2, 5), torch.tensor([0, 1]))


# --- triplet and contrastive losses ----------------------------------------------------------------

POINTS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])


def test_batch_hard_triplet_loss() -> None:
    # d01 = 1, d02 = 2, d03 = sqrt 10, d12 = sqrt 5, d13 = sqrt 5, d23 = sqrt 10; labels 0 0 1 1
    margin, r5, r10 = 0.3, math.sqrt(5), math.sqrt(10)
    per_anchor = [1 - 2 + margin, 1 - r5 + margin, r10 - 2 + margin, r10 - r5 + margin]
    expected = sum(max(0.0, x) for x in per_anchor) / 4
    loss = batch_hard_triplet_loss(POINTS, torch.tensor([0, 0, 1, 1]), margin)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_batch_hard_triplet_loss_skips_anchors_without_a_positive() -> None:
    # labels 0 0 1: the third point has no positive; anchors 0 and 1 have positive d = 1, negatives 2 and sqrt 5
    margin = 1.5
    loss = batch_hard_triplet_loss(POINTS[:3], torch.tensor([0, 0, 1]), margin)
    assert loss.item() == pytest.approx(((1 - 2 + margin) + (1 - math.sqrt(5) + margin)) / 2, rel=1e-6)


def test_batch_hard_triplet_gradient_is_finite_for_identical_points() -> None:
    points = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.5]], requires_grad=True)
    loss = batch_hard_triplet_loss(points, torch.tensor([0, 0, 1]), 2.0)  # active: the gradient flows
    assert loss.item() > 0
    loss.backward()
    assert points.grad is not None and torch.isfinite(points.grad).all()


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5]])
def test_triplet_batch_without_a_valid_anchor(labels: list[int]) -> None:
    with pytest.raises(TrainingError, match="class-balanced sampler"):
        batch_hard_triplet_loss(POINTS, torch.tensor(labels))


def test_contrastive_loss_on_two_pairs() -> None:
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 1.5]])
    # same pair at d = 5: 5^2; different pair at d = 0.5 inside margin 1: (1 - 0.5)^2
    loss = contrastive_loss(a, b, torch.tensor([1, 0]), margin=1.0)
    assert loss.item() == pytest.approx((25.0 + 0.25) / 2)
    # a different pair beyond the margin costs nothing
    assert contrastive_loss(a, b, torch.tensor([0, 0]), margin=0.4).item() == pytest.approx(0.0)


def test_contrastive_gradient_is_finite_at_zero_distance() -> None:
    a = torch.tensor([[1.0, 2.0], [1.0, 2.0]], requires_grad=True)
    loss = contrastive_loss(a, a.detach().clone(), torch.tensor([0.0, 1.0]))
    loss.backward()
    assert loss.item() == pytest.approx(0.5, rel=1e-5)  # (1 - 0)^2 for the different pair, 0 for the same
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_contrastive_shape_mismatch() -> None:
    with pytest.raises(TrainingError):
        contrastive_loss(torch.zeros(2, 3), torch.zeros(3, 3), torch.tensor([0, 1]))
