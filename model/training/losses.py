"""Metric-learning losses on embeddings: batch-hard triplet (Hermans et al. 2017) and contrastive pairs
(Hadsell et al. 2006). Distances are Euclidean on the embeddings as given (normalise them first if wanted)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from model.errors import TrainingError

# Squared distances are clamped at this before sqrt, whose gradient is infinite at 0.
MIN_SQUARED = 1e-12


def _safe_sqrt(squared: Tensor) -> Tensor:
    return torch.sqrt(squared.clamp(min=MIN_SQUARED))


def pairwise_distances(x: Tensor) -> Tensor:
    """(n, n) Euclidean distances between the rows of x, as |a|^2 + |b|^2 - 2 a.b (no (n, n, dim) tensor)."""
    norms = x.pow(2).sum(dim=1)
    return _safe_sqrt(norms[:, None] + norms[None, :] - 2.0 * x @ x.T)


def batch_hard_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float = 0.3) -> Tensor:
    """Mean over anchors of relu(d(a, hardest positive) - d(a, hardest negative) + margin).

    The hardest positive is the farthest other image of the anchor's identity, the hardest negative the
    nearest image of another identity. Anchors without a positive or a negative in the batch are skipped."""
    if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
        raise TrainingError(
            f"expected embeddings (batch, dim) and labels (batch,), got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    dist = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    negative = ~same
    valid = positive.any(dim=1) & negative.any(dim=1)
    if not bool(valid.any()):
        raise TrainingError(
            "a triplet batch needs at least two images of one person and one other person; "
            "use the class-balanced sampler"
        )
    hardest_positive = torch.where(positive, dist, torch.zeros_like(dist)).amax(dim=1)
    hardest_negative = torch.where(negative, dist, torch.full_like(dist, float("inf"))).amin(dim=1)
    return F.relu(hardest_positive - hardest_negative + margin)[valid].mean()


def contrastive_loss(a: Tensor, b: Tensor, same: Tensor, margin: float = 1.0) -> Tensor:
    """Siamese contrastive loss over pairs (a[i], b[i]), same[i] = 1 for one person, 0 for two:

        loss = mean_i( same_i * d_i^2 + (1 - same_i) * relu(margin - d_i)^2 ),   d_i = |a_i - b_i|_2

    Hadsell et al.'s formula without its 1/2 factors: pairs of one person are pulled together, pairs of
    two people pushed apart until they are `margin` away."""
    if a.dim() != 2 or a.shape != b.shape or same.shape != a.shape[:1] or len(a) == 0:
        raise TrainingError(
            f"expected a and b (pairs >= 1, dim) and same (pairs,), got {tuple(a.shape)}, {tuple(b.shape)} and "
            f"{tuple(same.shape)}"
        )
    squared = (a - b).pow(2).sum(dim=1)
    same = same.to(squared.dtype)
    pushed = F.relu(margin - _safe_sqrt(squared)).pow(2)
    return (same * squared + (1.0 - same) * pushed).mean()
