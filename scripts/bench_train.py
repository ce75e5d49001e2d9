"""`benchmark.py train`: training throughput (images/s) and peak memory of one training step, per backbone,
batch size and precision, with the real step (augmentation, margin head, optimiser) on synthetic chips.

Speed does not depend on the pixel values; the loss curve of a real run comes from `scripts/train.py fit`
(its log.csv and curve.png). On CPU, fp16/bf16 are skipped (mixed precision is CUDA-only).
"""

from __future__ import annotations

import json
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.errors import TrainingError
from model.training.augment import AugmentConfig
from model.training.config import TrainConfig
from model.training.trainer import TrainData, Trainer
from model.training.validation import ValidationSet
from scripts.bench_embed import run_isolated

CLASSES = 1000  # the head's width: a mid-sized training set
CPU_RUNS = "iresnet50:8:off,mobilefacenet:64:off"
CUDA_RUNS = "iresnet50:256:fp16,iresnet50:256:bf16,iresnet50:256:off,mobilefacenet:256:fp16,mobilefacenet:256:bf16"


def _data(n: int, seed: int = 0) -> TrainData:
    rng = np.random.default_rng(seed)
    chips = rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)
    return TrainData(chips, (np.arange(n) % CLASSES).astype(np.int64))


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_one(architecture: str, batch: int, amp: str, device: str, steps: int) -> dict[str, Any]:
    """One configuration in this process (`benchmark.py train-one`): errors become a result, not a crash."""
    try:
        return _bench_one(architecture, batch, amp, device, steps)
    except (TrainingError, torch.cuda.OutOfMemoryError) as exc:
        return {"architecture": architecture, "batch": batch, "amp": amp, "error": str(exc)[:300]}


def _bench_one(architecture: str, batch: int, amp: str, device: str, steps: int) -> dict[str, Any]:
    """Images/s over `steps` steps after 2 warm-up steps, and the peak memory of the process (or GPU)."""
    config = TrainConfig(
        architecture=architecture, batch_size=batch, amp=amp, epochs=1, augment=AugmentConfig(flip=0.5, crop=0.5)
    )
    data = _data(batch * min(steps + 2, 8))
    val = ValidationSet(data.chips[:2], np.array([[0, 1, 0], [0, 1, 1]]))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, data, val, Path(tmp), device)
        trainer._set_modes(0)
        batches = [np.arange(i * batch, (i + 1) * batch) % len(data.chips) for i in range(steps + 2)]
        losses = [trainer.train_step(b, 0) for b in batches[:2]]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        losses += [trainer.train_step(b, 0) for b in batches[2:]]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return {
        "architecture": architecture,
        "batch": batch,
        "amp": amp,
        "device": device,
        "images_per_s": round(steps * batch / seconds, 1),
        "ms_per_step": round(1000 * seconds / steps, 1),
        "peak_memory_mb": round(_peak_mb(device), 1),
        "losses_finite": bool(np.all(np.isfinite(losses))),
    }


def run_all(device: str, runs: list[tuple[str, int, str]], steps: int, out: Path) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for architecture, batch, amp in runs:
        # Each in its own process: its peak memory is its own (ru_maxrss never goes down).
        found = run_isolated(["train-one", architecture, str(batch), amp, device, str(steps)])
        results.append(found if "error" not in found else {"architecture": architecture, "batch": batch, **found})
    report = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "runs": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"train-{device.split(':')[0]}.json").write_text(json.dumps(report, indent=2))
    (out / f"train-{device.split(':')[0]}.md").write_text(
        f"# benchmark train ({report['device']})\n\n{markdown(report)}\n"
    )
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = ["| backbone | batch | precision | images/s | ms/step | peak memory MB |", "|---|---|---|---|---|---|"]
    for r in report["runs"]:
        if "error" in r:
            lines.append(f"| {r['architecture']} | {r['batch']} | {r['amp']} | error: {r['error']} | | |")
            continue
        cells = [r["architecture"], r["batch"], r["amp"], r["images_per_s"], r["ms_per_step"], r["peak_memory_mb"]]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def parse_runs(text: str) -> list[tuple[str, int, str]]:
    """`iresnet50:256:fp16,mobilefacenet:64:off` -> [(architecture, batch, amp), ...]."""
    runs = []
    for item in filter(None, text.split(",")):
        parts = item.split(":")
        if len(parts) != 3 or not parts[1].isdigit():
            raise TrainingError(f"{item!r} is not ARCH:BATCH:PRECISION (e.g. iresnet50:256:fp16)")
        runs.append((parts[0], int(parts[1]), parts[2]))
    return runs
