"""A trained model plugs into the zoo by its card: `custom:<name>` loads on torch and ONNX Runtime, with its own
embedding contract, and a card whose sha256 does not match its weights is refused. No servers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model.backbones import MobileFaceNet
from model.embedders.factory import create_embedder
from model.embedders.torch_embedder import TorchEmbedder
from model.errors import WeightsMismatch
from model.export import export_onnx
from model.model_card import ModelCard, card_dir, write_card
from model.zoo import ZOO, WeightsFile, contract_for
from scripts.export_onnx import register_onnx
from services.config import REPO_ROOT

NAME = "lowres-test"
MODEL = f"custom:{NAME}"
MFN = ZOO["mobilefacenet"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(model_dir: Path, seed: int, sha: str | None = None) -> ModelCard:
    """A randomly initialised MobileFaceNet's state dict and its card (`sha`: what the card records instead of the
    file's real sha256)."""
    torch.manual_seed(seed)
    folder = card_dir(model_dir, NAME)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{NAME}.pt"
    torch.save(MobileFaceNet().state_dict(), weights)
    card = ModelCard(
        name=NAME,
        architecture="mobilefacenet",
        dim=128,
        preprocessing=MFN.preprocessing,
        weights={"torch": WeightsFile(weights.name, sha or sha256(weights))},
        verify_threshold=0.3,
        identify_threshold=0.45,
        threshold_source="not calibrated (random weights)",
        base_model=None,
        license="test weights",
        created="2026-03-01T12:00:00+00:00",
        training={"seed": seed},
    )
    write_card(model_dir, card)
    return card


@pytest.fixture
def chips() -> list[np.ndarray]:
    return list(np.random.default_rng(0).integers(0, 256, size=(2, 112, 112, 3), dtype=np.uint8))


def test_a_custom_model_embeds_with_its_own_contract(tmp_path: Path, chips: list[np.ndarray]) -> None:
    save_model(tmp_path, seed=0)
    weights = tmp_path / "custom" / NAME / f"{NAME}.pt"
    emb = create_embedder(MODEL, "torch", [tmp_path / "empty", tmp_path], device="cpu")
    vectors = emb.embed(chips)
    assert vectors.shape == (2, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert emb.spec.name == MODEL and emb.runtime == "torch"
    assert emb.contract.weights_sha256 == sha256(weights)
    assert emb.contract.id.startswith(f"{MODEL}-128d-")
    assert emb.contract.id != contract_for(MFN, weights, flip=False).id  # same network and preprocessing


def test_the_contract_changes_with_the_weights(tmp_path: Path) -> None:
    save_model(tmp_path, seed=0)
    first = create_embedder(MODEL, "torch", [tmp_path], device="cpu").contract
    save_model(tmp_path, seed=1)
    second = create_embedder(MODEL, "torch", [tmp_path], device="cpu").contract
    assert first.weights_sha256 != second.weights_sha256 and first.id != second.id


def test_weights_that_do_not_match_the_cards_sha256_are_refused(tmp_path: Path) -> None:
    save_model(tmp_path, seed=0, sha="0" * 64)
    with pytest.raises(WeightsMismatch, match=f"{NAME}.pt: sha256 .* differs from the recorded {'0' * 64}"):
        create_embedder(MODEL, "auto", [tmp_path], device="cpu")


def test_the_onnx_export_of_a_custom_model_runs_on_onnx_runtime(tmp_path: Path, chips: list[np.ndarray]) -> None:
    card = save_model(tmp_path, seed=0)
    torch_emb = create_embedder(MODEL, "torch", [tmp_path], device="cpu")
    assert isinstance(torch_emb, TorchEmbedder)
    onnx_path = export_onnx(torch_emb.net, card_dir(tmp_path, NAME) / f"{NAME}.onnx")
    onnx = WeightsFile(onnx_path.name, sha256(onnx_path))
    write_card(tmp_path, dataclasses.replace(card, weights={**card.weights, "onnx": onnx}))
    onnx_emb = create_embedder(MODEL, "onnx", [tmp_path], device="cpu")
    assert onnx_emb.runtime == "onnx"
    assert onnx_emb.contract == torch_emb.contract  # the contract is the torch weights', whatever the runtime
    cosines = np.sum(onnx_emb.embed(chips) * torch_emb.embed(chips), axis=1)
    assert cosines.min() > 0.9999


def test_export_registers_the_onnx_file_in_the_card(tmp_path: Path) -> None:
    save_model(tmp_path, seed=0)
    folder = card_dir(tmp_path, NAME)
    onnx_path = folder / f"{NAME}.onnx"
    onnx_path.write_bytes(b"an onnx file")
    register_onnx(folder / "card.json", onnx_path)
    recorded = json.loads((folder / "card.json").read_text())["weights"]
    assert recorded["onnx"] == {"file": f"{NAME}.onnx", "sha256": hashlib.sha256(b"an onnx file").hexdigest()}
    assert recorded["torch"]["sha256"] == sha256(folder / f"{NAME}.pt")


@pytest.mark.slow
def test_export_onnx_script_exports_a_custom_model_beside_its_card(tmp_path: Path) -> None:
    save_model(tmp_path, seed=0)
    env = {**os.environ, "FACEREG_MODEL_DIR": str(tmp_path), "FACEREG_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "scripts/export_onnx.py", MODEL],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    folder = card_dir(tmp_path, NAME)
    assert report["onnx"] == str(folder / f"{NAME}.onnx") and report["card"] == str(folder / "card.json")
    card = json.loads((folder / "card.json").read_text())
    assert card["weights"]["onnx"]["sha256"] == sha256(folder / f"{NAME}.onnx")
    assert create_embedder(MODEL, "onnx", [tmp_path], device="cpu").runtime == "onnx"
