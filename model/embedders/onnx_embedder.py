"""ONNX Runtime: the same networks without PyTorch at inference time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.embedders.base import ChipEmbedder
from model.errors import ModelUnavailable
from model.types import FloatArray, ImageArray
from model.zoo import EmbeddingContract, ModelSpec


class OnnxEmbedder(ChipEmbedder):
    runtime = "onnx"

    def __init__(
        self,
        spec: ModelSpec,
        contract: EmbeddingContract,
        weights: Path,
        device: str,
        batch_size: int = 32,
        threads: int = 0,
    ) -> None:
        super().__init__(spec, contract, batch_size)
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.device = "cuda" if providers[0].startswith("CUDA") else "cpu"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(weights), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelUnavailable(f"{weights} is not a loadable ONNX model ({exc})") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        # Files exported with a fixed batch of 1 (like the upstream MobileFaceNet one) run face by face.
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None

    def _forward(self, batch: ImageArray) -> FloatArray:
        x = self.to_tensor_layout(batch)
        if self.fixed_batch == 1 and len(x) > 1:
            outs = [self.session.run(None, {self.input_name: x[i : i + 1]})[0] for i in range(len(x))]
            return np.concatenate(outs).astype(np.float32)
        return np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)
