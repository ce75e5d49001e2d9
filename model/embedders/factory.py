"""Embedder construction from a model name, a runtime and the model dirs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from model.embedders.base import Embedder
from model.errors import ModelUnavailable
from model.weights import verify_sha256
from model.zoo import contract_for, get_spec, locate_extra, locate_weights, pick_auto, resolve_runtime


def resolve_device(device: str) -> str:
    """`auto` -> cuda when a GPU is visible, else cpu; `cuda` without a GPU is an error."""
    import torch  # the runtimes load with the first model, not with the package

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable("FACEREG_DEVICE=cuda but no CUDA device is visible; use cpu or auto")
    return device


def create_embedder(
    model: str,
    runtime: str,
    model_dirs: Sequence[Path],
    device: str = "auto",
    flip: bool = False,
    batch_size: int = 32,
) -> Embedder:
    """Load the named model (`auto`: the best one present; `custom:<name>`: a trained one, by its card in
    `model_dirs`) on the given runtime and device; the weights file must have the sha256 its spec records."""
    if model == "auto":
        spec, runtime = pick_auto(model_dirs, runtime)
    else:
        spec = get_spec(model, model_dirs)
        runtime = resolve_runtime(spec, runtime)
    weights = locate_weights(spec, runtime, model_dirs)
    verify_sha256(weights, spec.weights[runtime].sha256)
    contract = contract_for(spec, weights, flip)
    dev = resolve_device(device)
    if runtime == "torch":
        from model.embedders.torch_embedder import TorchEmbedder  # each runtime loads with its first model

        return TorchEmbedder(spec, contract, weights, dev, batch_size)
    if runtime == "onnx":
        import torch

        from model.embedders.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(spec, contract, weights, dev, batch_size, threads=torch.get_num_threads())
    from model.embedders.dlib_embedder import DlibEmbedder

    return DlibEmbedder(spec, contract, weights, locate_extra(spec, "shape_predictor", model_dirs), batch_size)
