"""Export of a PyTorch backbone to ONNX, with a parity check against the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.embedders.base import l2_normalise


def export_onnx(net: nn.Module, path: Path, input_size: int = 112, opset: int = 17) -> Path:
    """Write `net` as ONNX with a dynamic batch axis (input `input`, output `embedding`)."""
    net = net.eval().float().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(2, 3, input_size, input_size)
    tmp = path.with_suffix(".onnx.part")
    torch.onnx.export(
        net,
        (dummy,),
        str(tmp),
        input_names=["input"],
        output_names=["embedding"],
        dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    tmp.replace(path)
    return path


def onnx_parity(net: nn.Module, path: Path, n: int = 16, input_size: int = 112, seed: int = 0) -> float:
    """The lowest cosine between torch and ONNX Runtime embeddings of `n` random inputs."""
    import onnxruntime as ort

    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, 3, input_size, input_size)).astype(np.float32))
    with torch.inference_mode():
        ref = net.eval().float().cpu()(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return float(np.min(np.sum(l2_normalise(ref) * l2_normalise(got), axis=1)))
