"""A finished run as a zoo entry: its best backbone as `<name>.pt` and `<name>.onnx` (parity-checked) with a
model card, under `<model dir>/custom/<name>/`, so `FACEREG_MODEL=custom:<name>` embeds with it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from model.errors import TrainingError
from model.export import export_onnx, onnx_parity
from model.model_card import ModelCard, card_dir, check_card_name, write_card
from model.training.checkpoint import save_atomic
from model.training.config import ARCHITECTURE_DIMS
from model.training.logbook import read_rows
from model.training.trainer import new_backbone, preprocessing_of
from model.training.validation import ValidationSet, pair_threshold
from model.weights import sha256_file
from model.zoo import WeightsFile

PARITY_MIN = 0.9999  # lowest torch/ONNX Runtime cosine accepted
CARD_FAR = 1e-3  # the provisional 1:N threshold: the validation pairs' threshold at this FAR


def run_record(run_dir: Path) -> dict[str, Any]:
    """What a run wrote about itself: config, data, split sizes and the per-epoch log."""

    def read(name: str) -> Any:
        path = run_dir / name
        return json.loads(path.read_text()) if path.is_file() else None

    split = read("split.json") or {}
    return {
        "config": read("config.json"),
        "data": read("data.json"),
        "split": {k: len(v) for k, v in split.items() if isinstance(v, list)} | {"seed": split.get("seed")},
        "log": read_rows(run_dir / "log.csv"),
    }


def publish(
    run_dir: Path,
    weights: Path,
    name: str,
    model_dir: Path,
    val: ValidationSet,
    now: datetime,
    base_model: str | None,
    license_text: str,
) -> ModelCard:
    """Write the card folder of `weights` (a backbone state dict of the run's architecture)."""
    check_card_name(name)
    record = run_record(run_dir)
    architecture = (record["config"] or {}).get("architecture")
    if architecture is None:
        raise TrainingError(f"{run_dir} has no config.json: not a training run folder")
    net = new_backbone(architecture, weights).eval()
    folder = card_dir(model_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    pt, onnx = folder / f"{name}.pt", folder / f"{name}.onnx"
    save_atomic(net.state_dict(), pt)
    pre = preprocessing_of(architecture)
    export_onnx(net, onnx, pre.input_size)
    parity = onnx_parity(net, onnx, input_size=pre.input_size)
    if parity < PARITY_MIN:
        raise TrainingError(f"the ONNX export disagrees with PyTorch (lowest cosine {parity:.6f} < {PARITY_MIN})")
    with torch.inference_mode():
        thresholds = pair_threshold(net, val, pre, "cpu", CARD_FAR)
    card = ModelCard(
        name=name,
        architecture=architecture,
        dim=ARCHITECTURE_DIMS[architecture],
        preprocessing=pre,
        weights={"torch": WeightsFile(pt.name, sha256_file(pt)), "onnx": WeightsFile(onnx.name, sha256_file(onnx))},
        verify_threshold=round(thresholds["verify"], 4),
        identify_threshold=round(max(thresholds["verify"], thresholds["at_far"]), 4),
        threshold_source=(
            f"1:1: best-accuracy threshold on the run's {len(val.pairs)} validation pairs (people never trained on); "
            f"1:N: provisional, their threshold at FAR {thresholds['far']:.2g}: calibrate with `evaluate.py open-set`"
        ),
        base_model=base_model,
        license=license_text,
        created=now.isoformat(),
        training=record | {"weights": weights.name, "onnx_parity_min_cosine": parity},
    )
    write_card(model_dir, card)
    return card
