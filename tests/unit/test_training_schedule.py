"""Progressive margin schedule and learning-rate factors of model.training.schedule, at hand-picked steps."""

from __future__ import annotations

import math

import pytest
import torch

from model.errors import TrainingError
from model.training.schedule import MarginSchedule, build_lr_scheduler, lr_factor

torch.set_num_threads(1)


# --- margin schedule ------------------------------------------------------------------------------


def test_margin_schedule_warmup_ramp_final() -> None:
    # warm-up s = 10, m = 0 for 100 steps, then a linear ramp to s = 64, m = 0.5 over 200 steps
    schedule = MarginSchedule(warmup_steps=100, ramp_steps=200)
    assert schedule.at(0) == (10.0, 0.0)
    assert schedule.at(99) == (10.0, 0.0)
    assert schedule.at(100) == (10.0, 0.0)
    assert schedule.at(200) == pytest.approx((37.0, 0.25))  # half way: 10 + 54 / 2
    assert schedule.at(250) == pytest.approx((50.5, 0.375))  # three quarters: 10 + 54 * 0.75
    assert schedule.at(300) == (64.0, 0.5)
    assert schedule.at(10**6) == (64.0, 0.5)


def test_margin_schedule_without_ramp_jumps_after_warmup() -> None:
    schedule = MarginSchedule(warmup_steps=5)
    assert (schedule.at(4), schedule.at(5)) == ((10.0, 0.0), (64.0, 0.5))
    assert MarginSchedule().at(0) == (64.0, 0.5)


@pytest.mark.parametrize("kwargs", [{"warmup_steps": -1}, {"ramp_steps": -5}, {"start_s": 0.0}, {"final_m": -0.1}])
def test_margin_schedule_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(TrainingError):
        MarginSchedule(**kwargs)  # type: ignore[arg-type]


def test_margin_schedule_rejects_a_negative_step() -> None:
    with pytest.raises(TrainingError):
        MarginSchedule().at(-1)


# --- learning-rate factor -----------------------------------------------------------------------------


def test_linear_warmup() -> None:
    factors = [lr_factor(step, 100, 4, "cosine") for step in range(5)]
    assert factors == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_cosine_after_warmup() -> None:
    # 100 steps after a 4-step warm-up: progress = (step - 4) / 100
    assert lr_factor(29, 104, 4, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(54, 104, 4, "cosine") == pytest.approx(0.5)
    assert lr_factor(54, 104, 4, "cosine", min_factor=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(104, 104, 4, "cosine", min_factor=0.1) == pytest.approx(0.1)
    assert lr_factor(500, 104, 4, "cosine", min_factor=0.1) == pytest.approx(0.1)


def test_step_decay_at_milestones() -> None:
    factors = [lr_factor(step, 30, 0, "step", milestones=(10, 20), gamma=0.1) for step in (0, 9, 10, 19, 20, 29)]
    assert factors == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(1, 30, 4, "step", milestones=(1,)) == 0.5  # warm-up comes first


def test_constant() -> None:
    assert [lr_factor(step, 10, 2, "constant") for step in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("step", "total", "warmup", "kind", "min_factor"),
    [(0, 10, 0, "linear", 0.0), (-1, 10, 0, "cosine", 0.0), (0, 0, 0, "cosine", 0.0), (0, 10, 0, "cosine", 1.5)],
)
def test_lr_factor_rejects_bad_settings(step: int, total: int, warmup: int, kind: str, min_factor: float) -> None:
    with pytest.raises(TrainingError):
        lr_factor(step, total, warmup, kind, min_factor=min_factor)


def test_unknown_kind_lists_the_choices() -> None:
    with pytest.raises(TrainingError, match="cosine, step, constant"):
        lr_factor(0, 10, 0, "poly")


# --- LambdaLR -------------------------------------------------------------------------------------------


def test_scheduler_keeps_the_ratio_of_param_group_learning_rates() -> None:
    backbone, head = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [backbone], "lr": 0.01}, {"params": [head], "lr": 0.1}])
    scheduler = build_lr_scheduler(optimizer, total_steps=8, warmup_steps=4, kind="cosine")
    # steps 0..3 warm up by quarters; then progress (step - 4) / 4 along the cosine
    factors = [0.25, 0.5, 0.75, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]
    for factor in factors:
        backbone_lr, head_lr = (group["lr"] for group in optimizer.param_groups)
        assert (backbone_lr, head_lr) == pytest.approx((0.01 * factor, 0.1 * factor))
        optimizer.step()
        scheduler.step()


def test_scheduler_rejects_an_unknown_kind_when_built() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(TrainingError):
        build_lr_scheduler(optimizer, 10, 0, "poly")
