"""Verification accuracy on the validation people's pairs, clean and at low resolution, each epoch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from model.evaluation import metrics
from model.training.augment import downscale, to_tensor
from model.zoo import Preprocessing

VAL_FOLDS = 10
BATCH = 128


@dataclass(slots=True)
class ValidationSet:
    """Aligned chips of the validation people and (i, j, same) pairs over them."""

    chips: np.ndarray
    pairs: np.ndarray
    lowres: int = 0  # > 0: also score the pairs with every chip reduced to this many pixels

    small: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.small = np.stack([downscale(c, self.lowres) for c in self.chips]) if self.lowres else self.chips[:0]


def embed_chips(net: nn.Module, chips: np.ndarray, pre: Preprocessing, device: str) -> np.ndarray:
    """Unit embeddings of `chips` with `net` in eval mode (its training mode restored after)."""
    was_training = net.training
    net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(chips), BATCH):
            x = to_tensor(chips[start : start + BATCH], pre.mean, pre.std).to(device)
            out.append(nn.functional.normalize(net(x).float(), dim=1).cpu().numpy())
    net.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def pair_accuracy(vectors: np.ndarray, pairs: np.ndarray) -> float:
    """10-fold accuracy of cosine scores (each fold's threshold chosen on the others), as LFW reports it."""
    scores = np.sum(vectors[pairs[:, 0]] * vectors[pairs[:, 1]], axis=1)
    folds = np.arange(len(pairs)) % VAL_FOLDS
    return metrics.kfold_accuracy(scores, pairs[:, 2], folds).mean


def validate(net: nn.Module, val: ValidationSet, pre: Preprocessing, device: str) -> dict[str, float]:
    """`val_acc` (clean), `val_acc_lowres` when asked, and `val_mean` of the two."""
    result = {"val_acc": pair_accuracy(embed_chips(net, val.chips, pre, device), val.pairs)}
    if val.lowres:
        result["val_acc_lowres"] = pair_accuracy(embed_chips(net, val.small, pre, device), val.pairs)
    result["val_mean"] = float(np.mean(list(result.values())))
    return result


def pair_threshold(net: nn.Module, val: ValidationSet, pre: Preprocessing, device: str, far: float) -> dict[str, float]:
    """The best-accuracy threshold of the validation pairs and the one at `far` (or the finest FAR the pairs
    support), a model card's defaults."""
    vectors = embed_chips(net, val.chips, pre, device)
    scores = np.sum(vectors[val.pairs[:, 0]] * vectors[val.pairs[:, 1]], axis=1)
    labels = val.pairs[:, 2]
    _, best = metrics.best_accuracy_threshold(scores, labels)
    far = max(far, 1.0 / max(int((labels == 0).sum()), 1))  # no finer than one impostor pair allows
    _, at_far = metrics.tar_at_far(scores, labels, far)
    at_far = min(float(at_far), 1.0)  # no genuine pair accepted there: the curve's first point is +inf
    return {"verify": float(best), "at_far": at_far, "far": far}
