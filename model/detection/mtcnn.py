"""MTCNN from facenet-pytorch (its weights ship inside the wheel, so it needs no download), run through
a copy of facenet's cascade (`detect_face`) whose memory does not grow with the number of candidates.

facenet keeps every stage-1 candidate and cuts each out into a list that is then concatenated: a 2.1 MP
photo tiled with 40 px faces makes thousands, +880 MB and 17 s on one core. Here each stage passes on at
most `MAX_CANDIDATES`, crops are written into one preallocated tensor and RNet/ONet run in batches of
`BATCH`. Below the bound the boxes, landmarks and scores are facenet's (tests/integration/test_mtcnn_bounded.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision.ops import batched_nms

from model.errors import ModelUnavailable
from model.types import Detection, FloatArray, ImageArray

try:
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.utils.detect_face import (
        batched_nms_numpy,
        bbreg,
        generateBoundingBox,
        imresample,
        pad,
        rerec,
    )
except ImportError:  # pragma: no cover - depends on the install; MTCNNDetector says what to do
    MTCNN = None

# The most candidates one stage passes on, far more faces than a photo for recognition holds. Memory
# hardly depends on it (PNet's pyramid dominates); time does, about 2 ms per candidate: a 2.1 MP image
# tiled with 40 px faces gives 18,000 candidates, and 1,000 of its 1,296 faces in 2.5 s at +180 MB.
MAX_CANDIDATES = 1000
# Crops RNet and ONet see at once: ONet on 1,000 crops in one batch costs +460 MB of activations.
BATCH = 128


class MTCNNDetector:
    """Three-stage cascade (Zhang et al., 2016). About 60 ms for a 250x250 image on one CPU core."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", min_face_size: int = 20) -> None:
        if MTCNN is None:  # pragma: no cover - depends on the install
            raise ModelUnavailable(
                "facenet-pytorch is not installed; run scripts/bootstrap.sh or choose FACEREG_DETECTOR=yunet"
            )
        # The cascade's own minimum is kept low: size limits are applied by the caller in the
        # original image's pixels, after the upscaling of small images.
        self._mtcnn = MTCNN(keep_all=True, device=device, min_face_size=min(min_face_size, 20), post_process=False)

    def detect(self, image: ImageArray) -> list[Detection]:
        with torch.no_grad():
            img = self._tensor(image)
            boxes, points = _stage3(self._mtcnn, img, _stage2(self._mtcnn, img, _stage1(self._mtcnn, img)))
        boxes_np = boxes.cpu().numpy().astype(np.float32)
        points_np = points.cpu().numpy().astype(np.float32)
        # Largest face first, as facenet's MTCNN.detect with its default select_largest=True.
        order = np.argsort((boxes_np[:, 2] - boxes_np[:, 0]) * (boxes_np[:, 3] - boxes_np[:, 1]))[::-1]
        return [Detection(box=boxes_np[i, :4], landmarks=points_np[i], score=float(boxes_np[i, 4])) for i in order]

    def proposals(self, image: ImageArray) -> FloatArray:
        """Stage 1's candidates (x1, y1, x2, y2, score), best first, as passed on to stage 2."""
        with torch.no_grad():
            return _stage1(self._mtcnn, self._tensor(image)).cpu().numpy().astype(np.float32)

    def _tensor(self, image: ImageArray) -> torch.Tensor:
        # Built as facenet builds it (a channels-last float view), so pooling sums in the same order.
        return torch.as_tensor(image.copy(), device=self._mtcnn.device).unsqueeze(0).permute(0, 3, 1, 2).float()


def _normalise(data: torch.Tensor) -> torch.Tensor:
    return (data - 127.5) * 0.0078125


def _stage1(mtcnn: Any, img: torch.Tensor) -> torch.Tensor:
    """PNet over the image pyramid, NMS per scale and across scales, boxes calibrated and squared."""
    h, w = img.shape[2:4]
    scale = 12.0 / mtcnn.min_face_size
    minl = min(h, w) * scale
    found = [img.new_zeros((0, 9))]
    while minl >= 12:
        reg, probs = mtcnn.pnet(_normalise(imresample(img, (int(h * scale + 1), int(w * scale + 1)))))
        boxes, inds = generateBoundingBox(reg, probs[:, 1], scale, mtcnn.thresholds[0])
        # batched_nms returns its picks best first, so a slice keeps the best-scoring ones.
        found.append(boxes[batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)][:MAX_CANDIDATES])
        scale, minl = scale * mtcnn.factor, minl * mtcnn.factor
    boxes = torch.cat(found)
    boxes = boxes[batched_nms(boxes[:, :4], boxes[:, 4], _one_image(boxes), 0.7)][:MAX_CANDIDATES]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack(
        [
            boxes[:, 0] + boxes[:, 5] * regw,
            boxes[:, 1] + boxes[:, 6] * regh,
            boxes[:, 2] + boxes[:, 7] * regw,
            boxes[:, 3] + boxes[:, 8] * regh,
            boxes[:, 4],
        ]
    ).permute(1, 0)
    return rerec(boxes)


def _stage2(mtcnn: Any, img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """RNet rescores each candidate's 24x24 crop; those over the threshold are NMSed, calibrated and squared."""
    boxes = _inside(img, boxes)
    if len(boxes) == 0:
        return boxes
    reg, prob = _batched(mtcnn.rnet, _crops(img, boxes, 24))
    keep = prob[:, 1] > mtcnn.thresholds[1]
    boxes, reg = torch.cat((boxes[keep, :4], prob[keep, 1:2]), dim=1), reg[keep]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], _one_image(boxes), 0.7)
    return rerec(bbreg(boxes[pick], reg[pick]))


def _stage3(mtcnn: Any, img: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ONet scores, calibrates and places landmarks on each 48x48 crop; then NMS by overlap of the smaller box."""
    boxes = _inside(img, boxes)
    if len(boxes) == 0:
        return img.new_zeros((0, 5)), img.new_zeros((0, 5, 2))
    reg, points, prob = _batched(mtcnn.onet, _crops(img, boxes, 48))
    keep = prob[:, 1] > mtcnn.thresholds[2]
    boxes, reg, points = torch.cat((boxes[keep, :4], prob[keep, 1:2]), dim=1), reg[keep], points[keep]
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points = torch.stack(
        (w[:, None] * points[:, :5] + boxes[:, 0:1] - 1, h[:, None] * points[:, 5:10] + boxes[:, 1:2] - 1), dim=2
    )
    boxes = bbreg(boxes, reg)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], _one_image(boxes), 0.7, "Min")
    return boxes[pick], points[pick]


def _one_image(boxes: torch.Tensor) -> torch.Tensor:
    """NMS group ids: every box belongs to the one image."""
    return torch.zeros(len(boxes), dtype=torch.int64, device=boxes.device)


def _inside(img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The boxes with at least one pixel in the image: facenet skips the crop of any other box but keeps
    the box, pairing every later box with its neighbour's crop."""
    y, ey, x, ex = pad(boxes, img.shape[3], img.shape[2])
    return boxes[torch.as_tensor((ey > y - 1) & (ex > x - 1), device=boxes.device)]


def _crops(img: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Each box's pixels (clipped to the image) resampled to size x size, normalised, in one tensor."""
    y, ey, x, ex = pad(boxes, img.shape[3], img.shape[2])
    out = img.new_empty((len(boxes), img.shape[1], size, size))
    for k in range(len(boxes)):
        out[k] = imresample(img[:, :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]], (size, size))[0]
    return out.sub_(127.5).mul_(0.0078125)  # as _normalise, without a second copy


def _batched(net: Any, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`net` over `data` in batches of BATCH, outputs concatenated."""
    outs = [net(data[i : i + BATCH]) for i in range(0, len(data), BATCH)]
    return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
