"""The training loop: margin-softmax, triplet, contrastive or identity-free distillation training of a backbone.

Every random draw of a step (batch order, augmentation) comes from (seed, epoch, step), and a checkpoint at
the end of each epoch holds the weights, the optimiser, the schedules and the best score: a run that stopped
resumes with exactly the step it would have taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from model.backbones import load_backbone
from model.embedders.torch_embedder import ARCHITECTURES
from model.errors import TrainingError
from model.training import checkpoint as ckpt
from model.training.augment import to_tensor
from model.training.config import TrainConfig
from model.training.heads import MarginHead, build_head
from model.training.logbook import append_rows, plot_curve, read_rows, truncate_after
from model.training.losses import batch_hard_triplet_loss, contrastive_loss
from model.training.sampling import ClassBalancedSampler
from model.training.schedule import MarginSchedule, build_lr_scheduler
from model.training.validation import ValidationSet, validate
from model.zoo import Preprocessing, spec_for_architecture

log = logging.getLogger(__name__)


def preprocessing_of(architecture: str) -> Preprocessing:
    """The input normalisation of the zoo model built on `architecture` (what its weights expect)."""
    return spec_for_architecture(architecture).preprocessing


def new_backbone(architecture: str, weights: Path | None = None) -> nn.Module:
    net = ARCHITECTURES[architecture]()
    return load_backbone(net, weights).train() if weights is not None else net


@dataclass(slots=True)
class TrainData:
    """Training chips with their class labels (0..C-1; ignored in distillation)."""

    chips: np.ndarray
    labels: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0


@dataclass(slots=True)
class TrainResult:
    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        data: TrainData,
        val: ValidationSet,
        run_dir: Path,
        device: str = "cpu",
        init_weights: Path | None = None,
    ) -> None:
        if config.amp != "off" and not device.startswith("cuda"):
            raise TrainingError(f"mixed precision ({config.amp}) needs a CUDA device; use --amp off on {device}")
        if config.labelled and data.num_classes < 2:
            raise TrainingError(f"{config.mode} training needs at least two people; the data has {data.num_classes}")
        if config.mode == "distill" and init_weights is None:
            raise TrainingError("distillation needs the teacher's weights (--init): the shipped model it starts from")
        self.config, self.data, self.val, self.device = config, data, val, device
        self.run_dir = run_dir
        self.pre = preprocessing_of(config.architecture)
        torch.manual_seed(config.seed)
        # channels-last: MobileFaceNet training steps measured 1.3-1.9x faster on 2 CPU cores (batch 64)
        self.net = new_backbone(config.architecture, init_weights).to(device).to(memory_format=torch.channels_last)
        self.head: MarginHead | None = None
        if config.mode == "classify":
            self.head = build_head(config.head, config.dim, data.num_classes, config.s, config.m).to(device)
        self.teacher = (
            new_backbone(config.architecture, init_weights).to(device).to(memory_format=torch.channels_last).eval()
            if config.mode == "distill"
            else None
        )
        self.sampler = self._sampler()
        self.steps_per_epoch = self._steps_per_epoch()
        total = config.epochs * self.steps_per_epoch
        self.optimizer = self._optimizer()
        self.scheduler = build_lr_scheduler(
            self.optimizer,
            total,
            int(config.lr_warmup_epochs * self.steps_per_epoch),
            config.lr_schedule,
            [e * self.steps_per_epoch for e in config.lr_milestones],
            config.lr_gamma,
        )
        self.margin = MarginSchedule(
            config.start_s,
            config.start_m,
            config.s,
            config.m,
            int(config.margin_warmup_epochs * self.steps_per_epoch),
            int(config.margin_ramp_epochs * self.steps_per_epoch),
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16")
        self.epoch, self.step = 0, 0
        self.best: dict[str, float] = {}
        self.best_epoch = -1
        self.checkpoints = run_dir / "checkpoints"

    # -- set-up --------------------------------------------------------------------------------------------
    def _steps_per_epoch(self) -> int:
        n = len(self.data.chips)
        if self.sampler is not None:
            return len(self.sampler)
        if n < self.config.batch_size:
            raise TrainingError(f"{n} training images are fewer than one batch of {self.config.batch_size}")
        return n // self.config.batch_size

    def _sampler(self) -> ClassBalancedSampler | None:
        cfg = self.config
        if not cfg.images_per_class:
            return None
        return ClassBalancedSampler(
            self.data.labels.tolist(), cfg.batch_size // cfg.images_per_class, cfg.images_per_class, cfg.seed
        )

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        groups: list[dict[str, Any]] = [{"params": list(self.net.parameters()), "lr": cfg.lr * cfg.backbone_lr_mult}]
        if self.head is not None:
            groups.append({"params": list(self.head.parameters()), "lr": cfg.lr * cfg.head_lr_mult})
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    # -- batches ---------------------------------------------------------------------------------------------
    def _batches(self, epoch: int) -> Iterator[np.ndarray]:
        cfg = self.config
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            yield from (np.asarray(b) for b in self.sampler)
            return
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.data.chips))
        for step in range(self.steps_per_epoch):
            yield order[step * cfg.batch_size : (step + 1) * cfg.batch_size]

    def _inputs(self, index: np.ndarray, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The (augmented) batch, and in distillation the teacher's clean view of the same crops."""
        rng = np.random.default_rng([self.config.seed, epoch, step])
        base = [self.config.augment.apply(self.data.chips[i], rng) for i in index]
        if self.config.mode != "distill":
            return self._tensor(base), None
        degraded = [self.config.degrade.apply(c, rng) for c in base]
        return self._tensor(degraded), self._tensor(base)

    def _tensor(self, chips: list[np.ndarray]) -> torch.Tensor:
        x = to_tensor(chips, self.pre.mean, self.pre.std).to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last)

    # -- one step ----------------------------------------------------------------------------------------------
    def _autocast(self) -> AbstractContextManager[object]:
        if self.config.amp == "off":
            return nullcontext()
        dtype = torch.float16 if self.config.amp == "fp16" else torch.bfloat16
        return torch.autocast("cuda", dtype=dtype)

    def _loss(self, x: torch.Tensor, clean: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        emb = self.net(x).float()
        if cfg.mode == "classify":
            assert self.head is not None
            return F.cross_entropy(self.head(emb, labels), labels)
        unit = F.normalize(emb, dim=1)
        if cfg.mode == "triplet":
            return batch_hard_triplet_loss(unit, labels, cfg.triplet_margin)
        if cfg.mode == "contrastive":
            i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
            return contrastive_loss(unit[i], unit[j], (labels[i] == labels[j]).float(), cfg.contrastive_margin)
        assert self.teacher is not None and clean is not None
        with torch.no_grad():
            target = F.normalize(self.teacher(clean).float(), dim=1)
        return (1.0 - (unit * target).sum(dim=1)).mean()

    def train_step(self, index: np.ndarray, epoch: int) -> float:
        """One optimiser step on the images `index`; returns the loss."""
        s, m = self.margin.at(self.step)
        if self.head is not None:
            self.head.set_margin(s, m)
        x, clean = self._inputs(index, epoch, self.step)
        labels = torch.from_numpy(self.data.labels[index]).to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self._loss(x, clean, labels)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the loss is {loss.item()} at step {self.step}; lower the learning rate or use --clip-grad"
            )
        self.scaler.scale(loss).backward()
        if self.config.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self._trainable(), self.config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return float(loss.item())

    def _trainable(self) -> list[nn.Parameter]:
        params = [p for p in self.net.parameters() if p.requires_grad]
        return params + (list(self.head.parameters()) if self.head is not None else [])

    def _set_modes(self, epoch: int) -> None:
        """Frozen-backbone warm-up: the backbone neither learns nor moves its BatchNorm statistics."""
        frozen = epoch < self.config.freeze_backbone_epochs
        for p in self.net.parameters():
            p.requires_grad_(not frozen)
        self.net.train(not frozen)
        if self.config.freeze_bn:
            for module in self.net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    # -- epochs ----------------------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        started = time.perf_counter()
        steps_csv, epochs_csv = self.run_dir / "steps.csv", self.run_dir / "log.csv"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume()
        else:
            for stale in (steps_csv, epochs_csv):
                stale.unlink(missing_ok=True)
            self._end_epoch(-1, [], 0.0)  # epoch 0 of the curve: the network before any step
        for epoch in range(self.epoch, self.config.epochs):
            self._set_modes(epoch)
            losses: list[float] = []
            t0 = time.perf_counter()
            bar = tqdm(self._batches(epoch), total=self.steps_per_epoch, desc=f"epoch {epoch + 1}", unit="step")
            for index in bar:
                losses.append(self.train_step(index, epoch))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
            self._end_epoch(epoch, losses, time.perf_counter() - t0)
        plot_curve(steps_csv, epochs_csv, self.run_dir / "curve.png", f"{self.config.architecture} {self.config.mode}")
        history: list[dict[str, Any]] = [dict(r) for r in read_rows(epochs_csv)]
        return TrainResult(self.best_epoch, self.best, history, time.perf_counter() - started)

    def _end_epoch(self, epoch: int, losses: list[float], seconds: float) -> None:
        """Validate, log, keep the best backbone and write the checkpoint of the epoch just finished."""
        scores = validate(self.net, self.val, self.pre, self.device)
        s, m = self.margin.at(max(self.step - 1, 0)) if self.head is not None else ("", "")
        first = self.step - len(losses)
        append_rows(
            self.run_dir / "steps.csv",
            [{"step": first + k, "epoch": epoch + 1, "loss": f"{v:.6f}"} for k, v in enumerate(losses)],
        )
        row = {
            "epoch": epoch + 1,
            "step": self.step,
            "lr": f"{self.optimizer.param_groups[0]['lr']:.6g}",
            "s": s,
            "m": m,
            "train_loss": f"{np.mean(losses):.6f}" if losses else "",
            **{k: f"{v:.5f}" for k, v in scores.items()},
            "seconds": f"{seconds:.1f}",
        }
        append_rows(self.run_dir / "log.csv", [row])
        log.info("epoch %d: %s", epoch + 1, row)
        if epoch >= 0 and scores[self.config.select] > self.best.get(self.config.select, -1.0):
            self.best, self.best_epoch = scores, epoch + 1
            ckpt.save_atomic(self.net.state_dict(), self.run_dir / "best.pt")
        if epoch < 0:
            ckpt.save_atomic(self.net.state_dict(), self.run_dir / "initial.pt")
            return
        self.epoch = epoch + 1
        ckpt.save_atomic(self._state(), ckpt.checkpoint_path(self.checkpoints, self.epoch))

    def _expect(self) -> dict[str, Any]:
        return {
            "fingerprint": self.config.fingerprint(),
            "architecture": self.config.architecture,
            "num_classes": self.data.num_classes if self.config.labelled else 0,
            "steps_per_epoch": self.steps_per_epoch,
        }

    def _state(self) -> dict[str, Any]:
        return {
            "format": ckpt.FORMAT,
            **self._expect(),
            "config": self.config.to_json(),
            "epoch": self.epoch,
            "step": self.step,
            "backbone": self.net.state_dict(),
            "head": self.head.state_dict() if self.head is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": self.best,
            "best_epoch": self.best_epoch,
            "torch_rng": torch.get_rng_state(),
        }

    def _resume(self) -> None:
        path = ckpt.latest(self.checkpoints)
        if path is None:
            raise TrainingError(f"nothing to resume in {self.run_dir}: it has no checkpoints/epoch-*.pt")
        state = ckpt.load_checkpoint(path, self._expect())
        self.net.load_state_dict(state["backbone"])
        if self.head is not None:
            self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        torch.set_rng_state(state["torch_rng"])
        for name, column in (("steps.csv", "step"), ("log.csv", "epoch")):
            truncate_after(self.run_dir / name, column, self.step - 1 if column == "step" else self.epoch)
        log.info("resumed %s at epoch %d, step %d", path, self.epoch, self.step)
