from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model.embedders.base import Embedder
from model.embedders.factory import create_embedder, resolve_device
from model.errors import ModelUnavailable, WeightsMismatch
from model.zoo import (
    ZOO,
    EmbeddingContract,
    Preprocessing,
    contract_for,
    get_spec,
    locate_weights,
    pick_auto,
    resolve_runtime,
)
from services.config import Settings

MFN = ZOO["mobilefacenet"]
R50 = ZOO["arcface-r50"]


@pytest.fixture(scope="module")
def shared_dir(settings: Settings) -> Path:
    """The model dir that holds the real MobileFaceNet weights (torch and onnx)."""
    for d in settings.model_dir:
        if all((d / "mobilefacenet" / name).is_file() for name in ("mobilefacenet.pt", "mobilefacenet.onnx")):
            return d
    pytest.skip("MobileFaceNet weights not found in the model dirs")


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(3, 112, 112, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def mfn_torch(shared_dir: Path) -> Embedder:
    return create_embedder("mobilefacenet", "torch", [shared_dir], device="cpu")


def _unit_rows(vectors: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5))


# Contracts


def _contract(**changes: Any) -> EmbeddingContract:
    base = EmbeddingContract("m", 128, "a" * 64, Preprocessing("arcface-112", 112, (0.5,) * 3, (0.5,) * 3), False)
    return dataclasses.replace(base, **changes)


def test_contract_id_is_deterministic_and_named_after_model_and_dim() -> None:
    cid = _contract().id
    assert cid == _contract().id
    assert cid.startswith("m-128d-")
    assert len(cid.removeprefix("m-128d-")) == 12


@pytest.mark.parametrize(
    "changes",
    [
        {"flip": True},
        {"weights_sha256": "b" * 64},
        {"preprocessing": Preprocessing("arcface-112", 112, (0.5,) * 3, (0.25,) * 3)},
        {"preprocessing": Preprocessing("arcface-112", 112, (0.5,) * 3, (0.5,) * 3, color="BGR")},
    ],
)
def test_contract_id_changes_with_weights_flip_and_preprocessing(changes: dict[str, Any]) -> None:
    assert _contract(**changes).id != _contract().id


def test_contract_for_uses_the_canonical_sha_for_every_runtime_file(shared_dir: Path) -> None:
    torch_file = locate_weights(MFN, "torch", [shared_dir])
    onnx_file = locate_weights(MFN, "onnx", [shared_dir])
    by_torch, by_onnx = contract_for(MFN, torch_file, flip=False), contract_for(MFN, onnx_file, flip=False)
    assert by_torch.weights_sha256 == by_onnx.weights_sha256 == MFN.canonical_sha256
    assert by_torch.id == by_onnx.id


def test_contract_for_hashes_the_file_when_the_zoo_records_no_identity(tmp_path: Path) -> None:
    assert R50.canonical_sha256 is None
    path = tmp_path / "arcface_r50.pth"
    path.write_bytes(b"one checkpoint")
    first = contract_for(R50, path, flip=False)
    assert first.weights_sha256 == hashlib.sha256(b"one checkpoint").hexdigest()
    path.write_bytes(b"another checkpoint")
    assert contract_for(R50, path, flip=False).id != first.id


# Names and runtimes


@pytest.mark.parametrize(("name", "runtime"), [("arcface-r50", "torch"), ("mobilefacenet", "torch"), ("dlib", "dlib")])
def test_resolve_runtime_auto_is_the_first_runtime(name: str, runtime: str) -> None:
    assert resolve_runtime(ZOO[name], "auto") == runtime


def test_resolve_runtime_accepts_a_runtime_the_model_has() -> None:
    assert resolve_runtime(MFN, "onnx") == "onnx"


def test_resolve_runtime_rejects_a_runtime_the_model_lacks() -> None:
    with pytest.raises(ModelUnavailable, match=r"dlib has no 'onnx' runtime; it runs with: dlib$"):
        resolve_runtime(ZOO["dlib"], "onnx")
    with pytest.raises(ModelUnavailable, match="it runs with: torch, onnx"):
        resolve_runtime(MFN, "dlib")


def test_get_spec_of_an_unknown_model_lists_the_models() -> None:
    assert get_spec("mobilefacenet") is MFN
    with pytest.raises(ModelUnavailable) as info:
        get_spec("facenet")
    assert "'facenet'" in str(info.value)
    for name in ZOO:
        assert name in str(info.value)


# Locating weights


def test_locate_weights_says_where_it_looked_and_how_to_download(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    with pytest.raises(ModelUnavailable) as info:
        locate_weights(MFN, "torch", dirs)
    message = str(info.value)
    assert "mobilefacenet.pt" in message
    assert all(str(d) in message for d in dirs)
    assert "python scripts/download_weights.py mobilefacenet --runtime torch" in message
    assert "export_onnx" not in message


def test_locate_weights_of_an_onnx_file_also_suggests_exporting_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as info:
        locate_weights(R50, "onnx", [tmp_path])
    message = str(info.value)
    assert "w600k_r50.onnx" in message
    assert str(tmp_path) in message
    assert "python scripts/download_weights.py arcface-r50 --runtime onnx" in message
    assert "python scripts/export_onnx.py arcface-r50" in message


def test_locate_weights_without_dirs_says_none_is_configured() -> None:
    with pytest.raises(ModelUnavailable, match="no model dir configured"):
        locate_weights(MFN, "torch", [])


def test_locate_weights_finds_a_file_in_the_model_subdir(tmp_path: Path) -> None:
    path = tmp_path / "arcface-r50" / "arcface_r50.pth"
    path.parent.mkdir()
    path.write_bytes(b"x")
    assert locate_weights(R50, "torch", [tmp_path / "missing", tmp_path]) == path


# FACEREG_MODEL=auto


def test_pick_auto_prefers_mobilefacenet_when_arcface_is_absent(
    shared_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ModelUnavailable):
        locate_weights(R50, "torch", [shared_dir])
    with caplog.at_level(logging.INFO, logger="model.zoo"):
        assert pick_auto([shared_dir]) == (MFN, "torch")
    assert "picked mobilefacenet (torch runtime)" in caplog.text


def test_pick_auto_falls_back_to_the_bundled_dlib_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="model.zoo"):
        assert pick_auto([tmp_path]) == (ZOO["dlib"], "dlib")
    assert "picked dlib" in caplog.text


def test_pick_auto_prefers_arcface_when_its_weights_are_present(tmp_path: Path, shared_dir: Path) -> None:
    (tmp_path / "arcface_r50.pth").write_bytes(b"any bytes")
    assert pick_auto([shared_dir, tmp_path]) == (R50, "torch")


def test_pick_auto_for_a_runtime_skips_models_without_it(shared_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "arcface_r50.pth").write_bytes(b"torch only")
    assert pick_auto([shared_dir, tmp_path], runtime="onnx") == (MFN, "onnx")
    with pytest.raises(ModelUnavailable, match="no embedding model"):
        pick_auto([tmp_path], runtime="onnx")


# Embedders


def test_create_embedder_refuses_weights_with_another_sha(shared_dir: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "mobilefacenet.pt"
    shutil.copyfile(locate_weights(MFN, "torch", [shared_dir]), tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsMismatch, match="sha256"):
        create_embedder("mobilefacenet", "torch", [tmp_path], device="cpu")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda"
    else:
        with pytest.raises(ModelUnavailable, match="no CUDA device"):
            resolve_device("cuda")


def test_mobilefacenet_torch_and_onnx_give_the_same_unit_vectors(
    mfn_torch: Embedder, shared_dir: Path, chips: np.ndarray
) -> None:
    mfn_onnx = create_embedder("mobilefacenet", "onnx", [shared_dir], device="cpu")
    assert (mfn_torch.runtime, mfn_onnx.runtime) == ("torch", "onnx")
    assert mfn_torch.contract.id == mfn_onnx.contract.id
    a, b = mfn_torch.embed(list(chips)), mfn_onnx.embed(list(chips))
    for v in (a, b):
        assert v.shape == (3, 128)
        assert v.dtype == np.float32
        assert _unit_rows(v)
    assert np.all(np.sum(a * b, axis=1) >= 0.999)


def test_embed_of_no_chips_is_an_empty_matrix(mfn_torch: Embedder) -> None:
    out = mfn_torch.embed([])
    assert out.shape == (0, 128)
    assert out.dtype == np.float32


def test_flip_changes_the_contract_and_makes_embeddings_mirror_invariant(
    mfn_torch: Embedder, shared_dir: Path, chips: np.ndarray
) -> None:
    flipped = create_embedder("mobilefacenet", "torch", [shared_dir], device="cpu", flip=True)
    assert flipped.contract.flip
    assert flipped.contract.id != mfn_torch.contract.id
    vectors = flipped.embed(list(chips))
    assert vectors.shape == (3, 128)
    assert _unit_rows(vectors)
    mirrored = flipped.embed([np.ascontiguousarray(c[:, ::-1]) for c in chips])
    np.testing.assert_allclose(mirrored, vectors, atol=1e-4)


def test_dlib_embedder_needs_no_model_dir() -> None:
    embedder = create_embedder("dlib", "auto", [])
    assert (embedder.runtime, embedder.contract.model, embedder.contract.dim) == ("dlib", "dlib", 128)
    chips = np.random.default_rng(1).integers(0, 256, size=(2, 150, 150, 3), dtype=np.uint8)
    vectors = embedder.embed(list(chips))
    assert vectors.shape == (2, 128)
    assert vectors.dtype == np.float32
    assert _unit_rows(vectors)
