"""What a training run is asked to do: one frozen record, saved with the run and with every checkpoint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from model.errors import TrainingError
from model.training.augment import AugmentConfig, DegradeConfig

ARCHITECTURE_DIMS = {"mobilefacenet": 128, "iresnet50": 512}
MODES = ("classify", "triplet", "contrastive", "distill")
HEADS = ("arcface", "cosface", "sphereface", "combined")
AMP = ("off", "fp16", "bf16")
SELECT = ("val_acc", "val_acc_lowres", "val_mean")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    architecture: str = "mobilefacenet"
    mode: str = "classify"  # classify (margin head) | triplet | contrastive | distill (no labels)
    head: str = "arcface"
    # Progressive margin: (start_s, start_m) for `margin_warmup_epochs`, then linear to (s, m) over
    # `margin_ramp_epochs`.
    s: float = 64.0
    m: float = 0.5
    start_s: float = 10.0
    start_m: float = 0.0
    margin_warmup_epochs: float = 0.0
    margin_ramp_epochs: float = 0.0
    triplet_margin: float = 0.3
    contrastive_margin: float = 1.0
    epochs: int = 10
    batch_size: int = 64
    images_per_class: int = 0  # > 0: class-balanced batches of batch_size / images_per_class people
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    head_lr_mult: float = 1.0  # differential learning rates: the head's lr = lr * head_lr_mult
    backbone_lr_mult: float = 1.0  # and the backbone's lr = lr * backbone_lr_mult (fine-tuning: < 1)
    weight_decay: float = 5e-4
    momentum: float = 0.9
    lr_schedule: str = "cosine"  # cosine | step | constant
    lr_warmup_epochs: float = 0.0
    lr_milestones: tuple[int, ...] = ()  # epochs, for the step schedule
    lr_gamma: float = 0.1
    freeze_backbone_epochs: int = 0  # frozen-backbone warm-up: only the head learns at first
    freeze_bn: bool = False  # keep the backbone's BatchNorm statistics (fine-tuning on little data)
    amp: str = "off"  # fp16 | bf16: CUDA only
    clip_grad: float = 0.0  # max gradient norm; 0: off
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    val_pairs: int = 2000
    val_lowres: int = 40  # validation also on chips reduced to this many pixels (low-resolution accuracy)
    select: str = "val_acc"  # the metric that picks the best checkpoint

    def __post_init__(self) -> None:
        checks = {
            "architecture": (self.architecture, tuple(ARCHITECTURE_DIMS)),
            "mode": (self.mode, MODES),
            "head": (self.head, HEADS),
            "optimizer": (self.optimizer, ("sgd", "adamw")),
            "amp": (self.amp, AMP),
            "select": (self.select, SELECT),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise TrainingError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise TrainingError("epochs >= 1, batch size >= 2 and a positive learning rate are required")
        if self.images_per_class and (self.images_per_class < 2 or self.batch_size % self.images_per_class):
            raise TrainingError("images per class must be >= 2 and divide the batch size")
        if self.head == "sphereface" and (self.start_m != self.m or self.m != int(self.m)):
            raise TrainingError(
                "SphereFace takes one integer margin (start_m = m, e.g. 4): it anneals with lam, not a ramp"
            )
        if self.freeze_backbone_epochs and self.mode != "classify":
            raise TrainingError("a frozen-backbone warm-up trains the margin head alone: it needs mode classify")
        if self.mode in ("triplet", "contrastive") and not self.images_per_class:
            raise TrainingError(f"{self.mode} needs class-balanced batches: set images_per_class (e.g. 4)")

    @property
    def dim(self) -> int:
        return ARCHITECTURE_DIMS[self.architecture]

    @property
    def labelled(self) -> bool:
        return self.mode != "distill"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"unknown training setting(s): {', '.join(unknown)}")
        values = dict(data)
        if "augment" in values:
            values["augment"] = AugmentConfig(**_tuples(values["augment"]))
        if "degrade" in values:
            values["degrade"] = DegradeConfig(**_tuples(values["degrade"]))
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        return cls(**values)

    def fingerprint(self) -> str:
        """What a resumed run must share with its checkpoint: everything that shapes the model and its steps."""
        payload = {k: v for k, v in self.to_json().items() if k not in ("epochs", "val_pairs", "select")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the configs hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
