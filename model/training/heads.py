"""Margin softmax heads: the classifier layers that train a face embedder (ArcFace, CosFace, SphereFace).

Each head holds one weight row per identity and turns a batch of embeddings into scaled logits for
`F.cross_entropy`: s * cos(theta_j) for every class j, with the target class's cosine replaced by a margin
function that makes the target harder to reach. Embeddings and class weights are both L2-normalised, so
cos(theta_j) is the cosine between the embedding and class j's weight.

Deng et al. 2019 (ArcFace), Wang et al. 2018 (CosFace), Liu et al. 2017 (SphereFace).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.errors import TrainingError

# Cosines are clamped to [-1 + EPS, 1 - EPS] before sqrt/acos, whose gradients are infinite at +-1.
EPS = 1e-7


def _sin(cos: Tensor) -> Tensor:
    """sin(theta) from cos(theta), theta in [0, pi], with a finite gradient at cos = +-1."""
    c = cos.clamp(-1.0 + EPS, 1.0 - EPS)
    return torch.sqrt(1.0 - c * c)


def _theta(cos: Tensor) -> Tensor:
    """theta = acos(cos) in (0, pi), with a finite gradient at cos = +-1."""
    return torch.acos(cos.clamp(-1.0 + EPS, 1.0 - EPS))


def arc_margin(cos: Tensor, m: float, easy_margin: bool = False) -> Tensor:
    """cos(theta + m), with insightface's fallback where theta + m would pass pi and the logit grow again.

    easy_margin: cos(theta + m) only where cos > 0 (theta < pi/2), plain cos elsewhere. Otherwise
    cos(theta + m) where cos > cos(pi - m), and the CosFace-like cos - sin(pi - m) * m beyond. m = 0 gives
    cos exactly (sin(m) = 0, cos(m) = 1)."""
    phi = cos * math.cos(m) - _sin(cos) * math.sin(m)
    if easy_margin:
        return torch.where(cos > 0, phi, cos)
    return torch.where(cos > math.cos(math.pi - m), phi, cos - math.sin(math.pi - m) * m)


class MarginHead(nn.Module):
    """Common part of the heads: the class weights, the normalised cosines, the target column's margin.

    `s` (scale) and `m` (margin) are plain attributes, read at every forward; `set_margin` changes both with
    validation (a progressive schedule calls it between steps). Subclasses implement `target_logit` only."""

    weight: nn.Parameter

    def __init__(self, dim: int, num_classes: int, s: float, m: float) -> None:
        super().__init__()
        if dim < 1 or num_classes < 1:
            raise TrainingError(f"a margin head needs dim >= 1 and num_classes >= 1, got {dim} and {num_classes}")
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_normal_(self.weight)
        self.set_margin(s, m)

    def set_margin(self, s: float, m: float) -> None:
        """Set the scale and the margin (both read at the next forward: nothing is cached)."""
        if not (math.isfinite(s) and s > 0):
            raise TrainingError(f"the scale s must be a positive number, got {s}")
        if not (math.isfinite(m) and m >= 0):
            raise TrainingError(f"the margin m must be a number >= 0, got {m}")
        self.s, self.m = float(s), float(m)

    def cosine(self, embeddings: Tensor) -> Tensor:
        """(batch, num_classes) cosines between the embeddings and the class weights, at least float32."""
        cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))
        return cos.to(torch.promote_types(cos.dtype, torch.float32))  # fp16 under autocast: margins in fp32

    def target_logit(self, cos: Tensor) -> Tensor:
        """The margin function, applied to the target classes' cosines (shape (batch,))."""
        raise NotImplementedError

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Scaled logits (batch, num_classes): s * cos, with the target column replaced by s * target_logit."""
        self._check(embeddings, labels)
        cos = self.cosine(embeddings)
        index = labels.unsqueeze(1)
        target = self.target_logit(cos.gather(1, index).squeeze(1))
        return self.s * cos.scatter(1, index, target.unsqueeze(1).to(cos.dtype))

    def _check(self, embeddings: Tensor, labels: Tensor) -> None:
        num_classes, dim = self.weight.shape
        if embeddings.dim() != 2 or embeddings.shape[1] != dim:
            raise TrainingError(f"the head expects embeddings of shape (batch, {dim}), got {tuple(embeddings.shape)}")
        if labels.shape != embeddings.shape[:1] or labels.dtype != torch.int64:
            raise TrainingError(
                f"labels must be int64 of shape ({embeddings.shape[0]},), got {labels.dtype} {tuple(labels.shape)}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise TrainingError(f"labels must be class indices in [0, {num_classes}), the head has {num_classes}")


class ArcFaceHead(MarginHead):
    """Additive angular margin: cos(theta + m) on the target (see `arc_margin` for the fallback)."""

    def __init__(self, dim: int, num_classes: int, s: float = 64.0, m: float = 0.5, easy_margin: bool = False) -> None:
        super().__init__(dim, num_classes, s, m)
        self.easy_margin = easy_margin

    def target_logit(self, cos: Tensor) -> Tensor:
        return arc_margin(cos, self.m, self.easy_margin)


class CosFaceHead(MarginHead):
    """Additive cosine margin (large margin cosine loss): cos(theta) - m on the target."""

    def __init__(self, dim: int, num_classes: int, s: float = 64.0, m: float = 0.35) -> None:
        super().__init__(dim, num_classes, s, m)

    def target_logit(self, cos: Tensor) -> Tensor:
        return cos - self.m


class SphereFaceHead(MarginHead):
    """A-Softmax's multiplicative angular margin, in its normalised variant (unit features, fixed scale s).

    The original SphereFace scales by the feature norm; here features are L2-normalised like the other
    heads. Target: psi(theta) = (-1)^k cos(m theta) - 2k for theta in [k pi/m, (k+1) pi/m], a monotone
    extension of cos(m theta) over [0, pi]; m is a positive integer. The paper's training trick anneals
    with `lam`: target = (lam * cos + psi) / (1 + lam), so a large lam starts near plain softmax and lam = 0
    (the default) is pure A-Softmax; lower `lam` between steps as the paper does."""

    def __init__(self, dim: int, num_classes: int, s: float = 64.0, m: float = 4, lam: float = 0.0) -> None:
        super().__init__(dim, num_classes, s, m)
        self.lam = lam

    def set_margin(self, s: float, m: float) -> None:
        if not (math.isfinite(m) and m >= 1 and m == int(m)):
            raise TrainingError(f"SphereFace takes an integer margin m >= 1 (anneal with lam instead), got {m}")
        super().set_margin(s, m)

    def target_logit(self, cos: Tensor) -> Tensor:
        theta = _theta(cos)
        k = torch.floor(self.m * theta / math.pi).detach()
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)  # (-1)^k
        psi = sign * torch.cos(self.m * theta) - 2.0 * k
        return (self.lam * cos + psi) / (1.0 + self.lam)


class CombinedMarginHead(MarginHead):
    """insightface's combined margin cos(m1 theta + m2) - m3; `m` is m2 (what `set_margin` changes).

    With m1 = 1 the ArcFace rule is used (its fallback included), so m3 = 0 is exactly ArcFaceHead and
    m2 = 0 exactly CosFaceHead. With m1 != 1 the formula is applied as is, as insightface's original does."""

    def __init__(
        self, dim: int, num_classes: int, s: float = 64.0, m1: float = 1.0, m2: float = 0.5, m3: float = 0.0
    ) -> None:
        super().__init__(dim, num_classes, s, m2)
        self.m1 = m1
        self.m3 = m3

    @property
    def m2(self) -> float:
        return self.m

    def target_logit(self, cos: Tensor) -> Tensor:
        if self.m1 == 1.0:
            return arc_margin(cos, self.m) - self.m3
        return torch.cos(self.m1 * _theta(cos) + self.m) - self.m3


HEADS: dict[str, Callable[[int, int, float, float], MarginHead]] = {
    "arcface": ArcFaceHead,
    "cosface": CosFaceHead,
    "sphereface": SphereFaceHead,
    "combined": lambda dim, num_classes, s, m: CombinedMarginHead(dim, num_classes, s, m2=m),
}


def build_head(name: str, dim: int, num_classes: int, s: float, m: float) -> MarginHead:
    """The head called `name` (one of HEADS) with scale s and margin m (m2 for "combined")."""
    if name not in HEADS:
        raise TrainingError(f"unknown margin head {name!r}; choose one of {', '.join(HEADS)}")
    return HEADS[name](dim, num_classes, s, m)
