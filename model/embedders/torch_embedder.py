"""PyTorch runtime: batched, CPU or CUDA, fp16 on CUDA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.backbones import MobileFaceNet, iresnet50, load_backbone
from model.embedders.base import ChipEmbedder
from model.errors import ModelUnavailable
from model.types import FloatArray, ImageArray
from model.zoo import EmbeddingContract, ModelSpec

ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {"iresnet50": iresnet50, "mobilefacenet": MobileFaceNet}


def build_backbone(spec: ModelSpec) -> nn.Module:
    try:
        return ARCHITECTURES[spec.architecture]()
    except KeyError:
        raise ModelUnavailable(f"{spec.name}: architecture {spec.architecture} has no PyTorch implementation") from None


class TorchEmbedder(ChipEmbedder):
    runtime = "torch"

    def __init__(
        self, spec: ModelSpec, contract: EmbeddingContract, weights: Path, device: str, batch_size: int = 32
    ) -> None:
        super().__init__(spec, contract, batch_size)
        self.device = device
        self.half = device.startswith("cuda")
        net = load_backbone(build_backbone(spec), weights).to(device)
        self.net = net.half() if self.half else net

    @classmethod
    def from_module(
        cls, spec: ModelSpec, contract: EmbeddingContract, net: nn.Module, device: str = "cpu"
    ) -> TorchEmbedder:
        """Wrap an in-memory backbone (training, export checks) without a weights file."""
        self = cls.__new__(cls)
        ChipEmbedder.__init__(self, spec, contract)
        self.device, self.half, self.net = device, False, net.eval().to(device)
        return self

    def _forward(self, batch: ImageArray) -> FloatArray:
        x = torch.from_numpy(self.to_tensor_layout(batch)).to(self.device)
        if self.half:
            x = x.half()
        with torch.inference_mode():
            y = self.net(x)
        return np.asarray(y.float().cpu().numpy(), dtype=np.float32)
