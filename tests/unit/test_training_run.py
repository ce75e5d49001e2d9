"""The training loop on small synthetic data: every mode steps, a stopped run resumes exactly, publishing
writes a card whose ONNX export agrees with PyTorch, and bad settings are refused clearly."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model.backbones import MobileFaceNet
from model.errors import TrainingError
from model.model_card import read_card
from model.training.augment import AugmentConfig, DegradeConfig
from model.training.config import TrainConfig
from model.training.publish import publish
from model.training.trainer import TrainData, Trainer
from model.training.validation import ValidationSet

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _faces(n: int, classes: int, seed: int = 0) -> TrainData:
    """Chips whose class is a colour pattern plus noise: learnable, and quick at 112 px."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (classes, 112, 112, 3))
    labels = np.arange(n) % classes
    noise = rng.integers(-30, 30, (n, 112, 112, 3))
    return TrainData(np.clip(base[labels] + noise, 0, 255).astype(np.uint8), labels.astype(np.int64))


def _val() -> ValidationSet:
    data = _faces(8, 4, seed=1)
    pairs = np.array([[0, 4, 1], [1, 5, 1], [2, 6, 1], [3, 7, 1], [0, 1, 0], [2, 3, 0], [4, 6, 0], [5, 7, 0]] * 3)
    return ValidationSet(data.chips, pairs, lowres=32)


CONFIG = TrainConfig(
    epochs=2,
    batch_size=8,
    lr=0.01,
    margin_warmup_epochs=1,
    margin_ramp_epochs=0.5,
    augment=AugmentConfig(flip=0.5, crop=0.5, jitter=0.5, lowres=0.5),
    val_pairs=24,
)


def _losses(run: Path) -> list[float]:
    with (run / "steps.csv").open() as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


class _Killed(Exception):
    pass


def test_a_stopped_run_resumes_with_the_step_it_would_have_taken(tmp_path: Path) -> None:
    data = _faces(32, 4)
    whole = tmp_path / "whole"
    Trainer(CONFIG, data, _val(), whole).fit()

    stopped = tmp_path / "stopped"
    first = Trainer(CONFIG, data, _val(), stopped)
    real_step = first.train_step

    def dies_in_epoch_two(index: np.ndarray, epoch: int) -> float:
        if epoch == 1 and first.step == first.steps_per_epoch + 1:
            raise _Killed  # the process dies mid-epoch: steps of epoch 2 were logged nowhere durable
        return real_step(index, epoch)

    first.train_step = dies_in_epoch_two  # type: ignore[method-assign]
    with pytest.raises(_Killed):
        first.fit()
    Trainer(CONFIG, data, _val(), stopped).fit(resume=True)

    expected, got = _losses(whole), _losses(stopped)
    assert len(got) == len(expected) == 2 * 4
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    with (stopped / "log.csv").open() as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["0", "1", "2"]
    assert (stopped / "curve.png").stat().st_size > 1000


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path: Path) -> None:
    data = _faces(16, 4)
    Trainer(replace(CONFIG, epochs=1), data, _val(), tmp_path).fit()
    other = replace(CONFIG, head="cosface", m=0.35)
    with pytest.raises(TrainingError, match=r"cannot resume .* fingerprint"):
        Trainer(other, data, _val(), tmp_path).fit(resume=True)
    with pytest.raises(TrainingError, match="num_classes"):
        Trainer(replace(CONFIG, epochs=1), _faces(16, 2), _val(), tmp_path).fit(resume=True)


def test_resume_without_a_checkpoint_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="nothing to resume"):
        Trainer(CONFIG, _faces(16, 4), _val(), tmp_path).fit(resume=True)


def test_a_damaged_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "epoch-001.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="not a readable checkpoint"):
        Trainer(CONFIG, _faces(16, 4), _val(), tmp_path).fit(resume=True)


@pytest.mark.parametrize(
    "config",
    [
        replace(CONFIG, mode="triplet", images_per_class=2),
        replace(CONFIG, mode="contrastive", images_per_class=2),
        replace(CONFIG, head="sphereface", m=2, start_m=2),
        replace(CONFIG, head="combined", freeze_backbone_epochs=1, clip_grad=5.0, optimizer="adamw", lr=1e-3),
    ],
    ids=["triplet", "contrastive", "sphereface", "combined-frozen-warmup"],
)
def test_each_mode_takes_finite_steps(tmp_path: Path, config: TrainConfig) -> None:
    trainer = Trainer(config, _faces(16, 4), _val(), tmp_path)
    before = [p.detach().clone() for p in trainer.net.parameters()]
    trainer._set_modes(0)
    losses = [trainer.train_step(index, 0) for index in trainer._batches(0)]
    assert all(np.isfinite(losses))
    moved = any(not torch.equal(a, b) for a, b in zip(before, trainer.net.parameters(), strict=True))
    assert moved == (config.freeze_backbone_epochs == 0)


def _teacher(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    path = tmp_path / "teacher.pt"
    torch.save(MobileFaceNet().state_dict(), path)
    return path


def test_distillation_starts_at_zero_loss_on_clean_chips_and_learns_on_degraded_ones(tmp_path: Path) -> None:
    teacher = _teacher(tmp_path)
    clean = replace(
        CONFIG, mode="distill", degrade=DegradeConfig(p=0.0), augment=AugmentConfig(flip=0.0), freeze_bn=True
    )
    trainer = Trainer(clean, _faces(16, 4), _val(), tmp_path / "a", init_weights=teacher)
    trainer._set_modes(0)
    assert trainer.train_step(np.arange(8), 0) == pytest.approx(0.0, abs=1e-5)

    degraded = replace(clean, degrade=DegradeConfig(p=1.0, sizes=(16, 16)))
    trainer = Trainer(degraded, _faces(16, 4), _val(), tmp_path / "b", init_weights=teacher)
    trainer._set_modes(0)
    assert trainer.train_step(np.arange(8), 0) > 1e-3


def test_distillation_needs_a_teacher(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="teacher"):
        Trainer(replace(CONFIG, mode="distill"), _faces(16, 4), _val(), tmp_path)


def test_r50_takes_a_cpu_training_step_with_a_tiny_batch(tmp_path: Path) -> None:
    config = replace(CONFIG, architecture="iresnet50", batch_size=2, augment=AugmentConfig())
    trainer = Trainer(config, _faces(4, 2), _val(), tmp_path)
    head_before = trainer.head.weight.detach().clone() if trainer.head is not None else None
    loss = trainer.train_step(np.array([0, 1]), 0)
    assert np.isfinite(loss) and loss > 0
    assert head_before is not None and trainer.head is not None
    assert not torch.equal(head_before, trainer.head.weight)
    assert trainer.net.eval()(torch.zeros(1, 3, 112, 112)).shape == (1, 512)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amp": "fp16"}, "needs a CUDA device"),
        ({"batch_size": 64}, "fewer than one batch"),
    ],
)
def test_settings_that_cannot_run_are_refused(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        Trainer(replace(CONFIG, **changes), _faces(16, 4), _val(), tmp_path)


def test_one_person_cannot_be_trained_on(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="at least two people"):
        Trainer(CONFIG, _faces(16, 1), _val(), tmp_path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "siamese"}, "mode 'siamese'"),
        ({"mode": "triplet"}, "class-balanced"),
        ({"images_per_class": 3}, "divide the batch size"),
        ({"epochs": 0}, "epochs >= 1"),
        ({"mode": "distill", "freeze_backbone_epochs": 1}, "needs mode classify"),
        ({"head": "sphereface", "m": 4, "start_m": 0}, "one integer margin"),
    ],
)
def test_invalid_configs_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        replace(CONFIG, **changes)


def test_config_round_trips_through_json() -> None:
    config = replace(CONFIG, lr_milestones=(3, 6), degrade=DegradeConfig(sizes=(20, 40)))
    again = TrainConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again == config and again.fingerprint() == config.fingerprint()
    with pytest.raises(TrainingError, match="unknown training setting"):
        TrainConfig.from_json({"learning_rate": 1})


def test_publish_writes_weights_onnx_and_a_card_the_zoo_reads(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(replace(CONFIG, epochs=1), _faces(16, 4), _val(), run).fit()
    (run / "config.json").write_text(json.dumps(replace(CONFIG, epochs=1).to_json()))
    card = publish(run, run / "best.pt", "tiny", tmp_path / "models", _val(), NOW, None, "test data")
    folder = tmp_path / "models" / "custom" / "tiny"
    assert {p.name for p in folder.iterdir()} == {"tiny.pt", "tiny.onnx", "card.json"}
    again = read_card(folder / "card.json")
    assert again == card
    assert again.training["onnx_parity_min_cosine"] >= 0.9999
    assert [r["epoch"] for r in again.training["log"]] == ["0", "1"]
    assert again.dim == 128 and -1 <= again.verify_threshold <= again.identify_threshold <= 1
