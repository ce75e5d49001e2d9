"""FACEREG_DETECTOR=auto: RetinaFace where its weights are, MTCNN (weights in its wheel) elsewhere."""

from __future__ import annotations

from pathlib import Path

from model.detection.factory import RETINAFACE_FILE, resolve_detector
from services.config import Settings


def test_auto_is_retinaface_when_its_weights_are_found(tmp_path: Path) -> None:
    (tmp_path / "retinaface").mkdir()
    (tmp_path / "retinaface" / RETINAFACE_FILE).write_bytes(b"weights")
    assert resolve_detector("auto", [tmp_path / "elsewhere", tmp_path]) == "retinaface"


def test_auto_falls_back_to_mtcnn_and_a_named_detector_stays(tmp_path: Path) -> None:
    assert resolve_detector("auto", [tmp_path]) == "mtcnn"
    assert resolve_detector("yunet", [tmp_path]) == "yunet"


def test_the_defaults_are_the_measured_ones() -> None:
    fields = Settings.model_fields
    defaults = [fields[name].default for name in ("detector", "detect_upscale_below", "template_weight")]
    assert defaults == ["mtcnn", 160, 0.75]
