"""RetinaFace (Deng et al., 2020) with a MobileNet-0.25 backbone, in plain PyTorch.

The network is biubug6/Pytorch_Retinaface's `cfg_mnet` (MIT), trained on WIDER FACE: MobileNetV1 x0.25,
a 3-level FPN, SSH context modules and per-level heads with 2 anchors per location. About 1.7 MB of
weights, loaded from a state dict file; nothing is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import nms

from model.errors import ModelUnavailable
from model.types import Detection, ImageArray

# cfg_mnet: anchor sizes per level (pixels), the levels' strides, the box-coding variances.
MIN_SIZES: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
STEPS: tuple[int, ...] = (8, 16, 32)
VARIANCES: tuple[float, float] = (0.1, 0.2)
# The training input: BGR, 0-255, minus these channel means, no scaling.
MEAN_BGR: tuple[float, float, float] = (104.0, 117.0, 123.0)
_IN_CHANNEL, _OUT_CHANNEL = 32, 64


# --- network: attribute names follow upstream's state dict keys so the file loads strictly ---


def _conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky, inplace=True)
    )


def _conv_bn_no_relu(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup))


def _conv_bn1x1(inp: int, oup: int, leaky: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky, inplace=True)
    )


def _conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and a leaky ReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(leaky, inplace=True),
    )


class _MobileNetV1(nn.Module):
    """MobileNetV1 x0.25 without its classifier: feature maps at strides 8, 16 and 32."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2, leaky=0.1),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *(_conv_dw(128, 128, 1) for _ in range(5)))
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return c1, c2, self.stage3(c2)


class _FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = _conv_bn1x1(in_channels[0], out_channels, leaky)
        self.output2 = _conv_bn1x1(in_channels[1], out_channels, leaky)
        self.output3 = _conv_bn1x1(in_channels[2], out_channels, leaky)
        self.merge1 = _conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = _conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, c1: Tensor, c2: Tensor, c3: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p3 = self.output3(c3)
        p2 = self.merge2(self.output2(c2) + F.interpolate(p3, size=c2.shape[2:], mode="nearest"))
        p1 = self.merge1(self.output1(c1) + F.interpolate(p2, size=c1.shape[2:], mode="nearest"))
        return p1, p2, p3


class _SSH(nn.Module):
    """Single-stage headless context module: 3x3, 5x5 and 7x7 receptive fields from stacked 3x3 convs."""

    def __init__(self, in_channel: int, out_channel: int) -> None:
        super().__init__()
        leaky = 0.1 if out_channel <= 64 else 0.0
        self.conv3X3 = _conv_bn_no_relu(in_channel, out_channel // 2)
        self.conv5X5_1 = _conv_bn(in_channel, out_channel // 4, leaky=leaky)
        self.conv5X5_2 = _conv_bn_no_relu(out_channel // 4, out_channel // 4)
        self.conv7X7_2 = _conv_bn(out_channel // 4, out_channel // 4, leaky=leaky)
        self.conv7x7_3 = _conv_bn_no_relu(out_channel // 4, out_channel // 4)

    def forward(self, x: Tensor) -> Tensor:
        mid = self.conv5X5_1(x)
        branches = (self.conv3X3(x), self.conv5X5_2(mid), self.conv7x7_3(self.conv7X7_2(mid)))
        return F.relu(torch.cat(branches, dim=1))


class _Head(nn.Module):
    """A 1x1 conv giving `width` values per anchor, flattened to (batch, anchors, width) in prior order."""

    def __init__(self, in_channels: int, width: int, anchors: int = 2) -> None:
        super().__init__()
        self.width = width
        self.conv1x1 = nn.Conv2d(in_channels, anchors * width, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.width)


class RetinaFaceNet(nn.Module):
    """The raw network: (box offsets, class logits, landmark offsets), one row per prior box."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _MobileNetV1()
        self.fpn = _FPN((_IN_CHANNEL * 2, _IN_CHANNEL * 4, _IN_CHANNEL * 8), _OUT_CHANNEL)
        self.ssh1, self.ssh2, self.ssh3 = (_SSH(_OUT_CHANNEL, _OUT_CHANNEL) for _ in range(3))
        self.ClassHead = nn.ModuleList(_Head(_OUT_CHANNEL, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(_OUT_CHANNEL, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(_OUT_CHANNEL, 10) for _ in range(3))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p1, p2, p3 = self.fpn(*self.body(x))
        features = (self.ssh1(p1), self.ssh2(p2), self.ssh3(p3))
        return (
            torch.cat([head(f) for head, f in zip(self.BboxHead, features, strict=True)], dim=1),
            torch.cat([head(f) for head, f in zip(self.ClassHead, features, strict=True)], dim=1),
            torch.cat([head(f) for head, f in zip(self.LandmarkHead, features, strict=True)], dim=1),
        )


# --- pure steps around the network ---


def upstream_state_dict(raw: object) -> dict[str, Tensor]:
    """Upstream's checkpoint as this module's keys: unwrapped from {"state_dict": ...} and without the
    "module." prefix that a model saved from nn.DataParallel carries."""
    if isinstance(raw, Mapping) and "state_dict" in raw:
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise ModelUnavailable("the RetinaFace weights file holds no state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in raw.items()}


def load_network(weights: Path, device: str = "cpu") -> RetinaFaceNet:
    """The network with the file's weights, in eval mode on `device`; a clear error for any other file."""
    if not weights.is_file():
        raise ModelUnavailable(f"RetinaFace weights not found at {weights}")
    try:
        raw = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise ModelUnavailable(f"{weights} is not a readable PyTorch weights file ({exc})") from exc
    net = RetinaFaceNet()
    try:
        net.load_state_dict(upstream_state_dict(raw))
    except RuntimeError as exc:
        raise ModelUnavailable(f"{weights} is not a RetinaFace MobileNet-0.25 state dict: {exc}") from exc
    return net.eval().to(device)


@lru_cache(maxsize=16)
def prior_boxes(height: int, width: int) -> Tensor:
    """The anchors (cx, cy, w, h) in pixels for an image of this size, in the network's output order:
    level, row, column, anchor size. Cached: a camera sends the same size every frame. Do not modify."""
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        # Each stride-2 conv (kernel 3, padding 1) maps n to ceil(n / 2), so level k is ceil(n / step).
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid(
            (torch.arange(rows, dtype=torch.float32) + 0.5) * step,
            (torch.arange(cols, dtype=torch.float32) + 0.5) * step,
            indexing="ij",
        )
        centres = torch.stack((cx, cy), dim=-1).reshape(-1, 1, 2).expand(-1, len(sizes), 2)
        wh = torch.tensor(sizes, dtype=torch.float32).reshape(1, -1, 1).expand(rows * cols, -1, 2)
        levels.append(torch.cat((centres, wh), dim=-1).reshape(-1, 4))
    return torch.cat(levels)


def decode_boxes(loc: Tensor, priors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """Box offsets (dx, dy, dw, dh) against priors (cx, cy, w, h) -> corners (x1, y1, x2, y2)."""
    centre = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])
    return torch.cat((centre - size / 2, centre + size / 2), dim=1)


def decode_landmarks(pre: Tensor, priors: Tensor, variance: float = VARIANCES[0]) -> Tensor:
    """Landmark offsets (N, 10) against priors -> points (N, 5, 2)."""
    return priors[:, None, :2] + pre.reshape(-1, 5, 2) * variance * priors[:, None, 2:]


def select(boxes: Tensor, scores: Tensor, confidence: float, iou: float, pre_nms_top_k: int, keep_top_k: int) -> Tensor:
    """Indices of the boxes kept, best first: score over `confidence`, the `pre_nms_top_k` best, greedy
    NMS at `iou`, at most `keep_top_k`."""
    candidates = torch.nonzero(scores > confidence).flatten()
    candidates = candidates[torch.argsort(scores[candidates], descending=True)[:pre_nms_top_k]]
    return candidates[nms(boxes[candidates], scores[candidates], iou)[:keep_top_k]]


def to_input(image: ImageArray, device: str) -> Tensor:
    """RGB uint8 HxWx3 -> 1x3xHxW float BGR minus the training means."""
    bgr = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).to(device)
    mean = torch.tensor(MEAN_BGR, dtype=torch.float32, device=device)
    return (bgr.float() - mean).permute(2, 0, 1).unsqueeze(0)


class RetinaFaceDetector:
    """RetinaFace MobileNet-0.25 from a state dict file.

    `confidence`: the score a box needs before NMS (the pipeline's own score threshold applies afterwards).
    `pre_nms_top_k`, `keep_top_k`: caps on candidates and faces, upstream's detect.py values.
    """

    name = "retinaface"

    def __init__(
        self,
        weights: Path,
        device: str = "cpu",
        confidence: float = 0.5,
        nms_iou: float = 0.4,
        pre_nms_top_k: int = 5000,
        keep_top_k: int = 750,
    ) -> None:
        self._device = device
        self._net = load_network(weights, device)
        self._confidence, self._nms_iou = confidence, nms_iou
        self._pre_nms_top_k, self._keep_top_k = pre_nms_top_k, keep_top_k

    def detect(self, image: ImageArray) -> list[Detection]:
        h, w = image.shape[:2]
        with torch.inference_mode():
            loc, logits, landm = self._net(to_input(image, self._device))
            priors = prior_boxes(h, w).to(self._device)
            if len(priors) != loc.shape[1]:  # pragma: no cover - a mismatch is a bug in prior_boxes
                raise RuntimeError(f"{len(priors)} priors for {loc.shape[1]} network outputs at {w}x{h}")
            scores = logits[0].softmax(dim=-1)[:, 1]
            boxes = decode_boxes(loc[0], priors)
            keep = select(boxes, scores, self._confidence, self._nms_iou, self._pre_nms_top_k, self._keep_top_k)
            points = decode_landmarks(landm[0, keep], priors[keep])
            boxes_np = boxes[keep].cpu().numpy().astype(np.float32)
            points_np = points.cpu().numpy().astype(np.float32)
            scores_np = scores[keep].cpu().numpy()
        # Upstream's landmark order (WIDER FACE annotations) already is the viewer's left eye, right eye,
        # nose, left and right mouth corner: the ArcFace template's order (checked against MTCNN on LFW).
        return [Detection(box=boxes_np[i], landmarks=points_np[i], score=float(scores_np[i])) for i in range(len(keep))]
