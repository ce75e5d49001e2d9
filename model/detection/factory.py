"""Detector construction by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from model.detection.base import Detector
from model.detection.yunet import YuNetDetector
from model.errors import ModelUnavailable
from model.weights import find_weights

YUNET_FILE = "yunet_n_dynamic.onnx"
RETINAFACE_FILE = "retinaface_mobilenet0.25.pth"
RETINAFACE_URL = (
    "https://github.com/foamliu/MobileFaceNet/raw/a6cc9032a659b615f477833e1a70b5e7931bcccc/"
    "retinaface/weights/mobilenet0.25_Final.pth"
)


def _mtcnn(model_dirs: Sequence[Path], device: str) -> Detector:
    from model.detection.mtcnn import MTCNNDetector  # torch: loaded by the processes that detect, only

    return MTCNNDetector(device=device)


def _yunet(model_dirs: Sequence[Path], device: str) -> Detector:
    path = find_weights(YUNET_FILE, model_dirs, subdir="yunet")
    if path is None:
        raise ModelUnavailable(
            f"YuNet needs {YUNET_FILE} in one of the model dirs ({', '.join(map(str, model_dirs))}); "
            "run `python scripts/download_weights.py yunet` or set FACEREG_MODEL_DIR"
        )
    return YuNetDetector(path)


def _retinaface(model_dirs: Sequence[Path], device: str) -> Detector:
    path = find_weights(RETINAFACE_FILE, model_dirs, subdir="retinaface")
    if path is None:
        raise ModelUnavailable(
            f"RetinaFace needs {RETINAFACE_FILE} in one of the model dirs ({', '.join(map(str, model_dirs))}); "
            f"run `python scripts/download_weights.py retinaface` (from {RETINAFACE_URL}) or set FACEREG_MODEL_DIR"
        )
    from model.detection.retinaface import RetinaFaceDetector  # torch: loaded by the processes that detect, only

    return RetinaFaceDetector(path, device=device)


DETECTORS: dict[str, Callable[[Sequence[Path], str], Detector]] = {
    "mtcnn": _mtcnn,
    "yunet": _yunet,
    "retinaface": _retinaface,
}


def resolve_detector(name: str, model_dirs: Sequence[Path]) -> str:
    """ "auto": RetinaFace when its weights are found (measured the most accurate, on LFW and on its 64-px
    variant, and 4x faster than MTCNN on CPU: README, `benchmark.py quality`), else MTCNN (weights in its wheel)."""
    if name != "auto":
        return name
    return "retinaface" if find_weights(RETINAFACE_FILE, model_dirs, subdir="retinaface") else "mtcnn"


def create_detector(name: str, model_dirs: Sequence[Path], device: str = "cpu") -> Detector:
    name = resolve_detector(name, model_dirs)
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ModelUnavailable(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}") from None
    return factory(model_dirs, device)
