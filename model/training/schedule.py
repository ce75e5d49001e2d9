"""Training schedules: the margin head's progressive scale/margin, and the learning-rate factor per step."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from model.errors import TrainingError

LR_KINDS = ("cosine", "step", "constant")


@dataclass(frozen=True, slots=True)
class MarginSchedule:
    """(s, m) per step: (start_s, start_m) during `warmup_steps`, then a linear ramp to (final_s, final_m)
    over `ramp_steps`, then final. With no warm-up and no ramp it is always final."""

    start_s: float = 10.0
    start_m: float = 0.0
    final_s: float = 64.0
    final_m: float = 0.5
    warmup_steps: int = 0
    ramp_steps: int = 0

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or self.ramp_steps < 0:
            raise TrainingError(
                f"margin schedule steps must be >= 0, got warmup {self.warmup_steps} and ramp {self.ramp_steps}"
            )
        if not (self.start_s > 0 and self.final_s > 0):
            raise TrainingError(f"margin schedule scales must be > 0, got {self.start_s} and {self.final_s}")
        if not (self.start_m >= 0 and self.final_m >= 0):
            raise TrainingError(f"margin schedule margins must be >= 0, got {self.start_m} and {self.final_m}")

    def at(self, step: int) -> tuple[float, float]:
        """(s, m) for the 0-based training step."""
        if step < 0:
            raise TrainingError(f"a training step is >= 0, got {step}")
        if step < self.warmup_steps:
            return self.start_s, self.start_m
        if step >= self.warmup_steps + self.ramp_steps:
            return self.final_s, self.final_m
        t = (step - self.warmup_steps) / self.ramp_steps
        return self.start_s + t * (self.final_s - self.start_s), self.start_m + t * (self.final_m - self.start_m)


def lr_factor(
    step: int,
    total_steps: int,
    warmup_steps: int,
    kind: str,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    min_factor: float = 0.0,
) -> float:
    """The factor on the base learning rate at the 0-based `step`.

    Warm-up: (step + 1) / warmup_steps for step < warmup_steps. Then "constant": 1; "step": gamma to the
    number of milestones (absolute steps) <= step; "cosine": min_factor + (1 - min_factor) * 0.5 *
    (1 + cos(pi * progress)), progress going 0 -> 1 over the steps after warm-up (1 past total_steps)."""
    if kind not in LR_KINDS:
        raise TrainingError(f"unknown learning-rate schedule {kind!r}; choose one of {', '.join(LR_KINDS)}")
    if step < 0 or warmup_steps < 0 or total_steps < 1:
        raise TrainingError(
            f"need step >= 0, warmup_steps >= 0, total_steps >= 1; got {step}, {warmup_steps}, {total_steps}"
        )
    if not (0.0 <= min_factor <= 1.0 and gamma > 0):
        raise TrainingError(f"need min_factor in [0, 1] and gamma > 0, got {min_factor} and {gamma}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "step":
        return gamma ** sum(1 for milestone in milestones if milestone <= step)
    if kind == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_lr_scheduler(
    optimizer: Optimizer,
    total_steps: int,
    warmup_steps: int,
    kind: str,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    min_factor: float = 0.0,
) -> LambdaLR:
    """A per-step LambdaLR applying `lr_factor` to each param group's own base lr (their ratios are kept).
    Bad settings raise TrainingError here: LambdaLR evaluates step 0 when built."""
    milestones = tuple(milestones)

    def factor(step: int) -> float:
        return lr_factor(step, total_steps, warmup_steps, kind, milestones, gamma, min_factor)

    return LambdaLR(optimizer, factor)
