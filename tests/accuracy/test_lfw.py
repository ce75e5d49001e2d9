"""Real-face accuracy on LFW, on a subset sized for CI. Full-protocol numbers: `make demo` / README."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.embedders import create_embedder
from model.evaluation.protocols import evaluate_identification, evaluate_verification
from model.pipeline import FacePipeline, PipelineOptions
from services.config import Settings
from services.engine import build_pipeline

pytestmark = pytest.mark.accuracy


def _with_fallback(pipeline: FacePipeline) -> FacePipeline:
    """The LFW protocol's treatment of missed detections: a flagged centre crop, not a dropped pair."""
    return FacePipeline(pipeline.detector, pipeline.embedder, PipelineOptions(no_face="center_crop"))


def test_mobilefacenet_view2_two_folds_and_onnx_parity(
    mfn: FacePipeline, settings: Settings, lfw: Path, tmp_path: Path
) -> None:
    onnx = create_embedder("mobilefacenet", "onnx", settings.model_dir, "cpu")
    report = evaluate_verification(
        _with_fallback(mfn), lfw, lfw / "verify_pairs_folds.csv", tmp_path, folds=2, parity_with=onnx, parity_n=100
    )
    assert report["n_pairs"] == 1200 and report["n_failed"] == 0
    assert report["accuracy_mean"] >= 0.985
    assert report["roc_auc"] >= 0.995
    assert report["runtime_parity"]["n"] == 100
    assert report["runtime_parity"]["min_cosine"] >= 0.999
    # The calibrated default threshold sits near the cross-validated one.
    assert abs(report["threshold"] - mfn.embedder.spec.verify_threshold) < 0.08


def test_mobilefacenet_gallery_top1_on_a_subset(mfn: FacePipeline, lfw: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.csv"
    lines = (lfw / "gallery_split.csv").read_text().splitlines()
    people = sorted({ln.split(",")[1] for ln in lines[1:]})[::6]  # 71 of the 423 people
    keep = set(people)
    split.write_text("\n".join([lines[0], *[ln for ln in lines[1:] if ln.split(",")[1] in keep]]) + "\n")
    report = evaluate_identification(_with_fallback(mfn), lfw, split, tmp_path / "id")
    assert report["n_identities"] == len(people)
    assert report["top1"] >= 0.97
    assert report["top5"] >= report["top1"]


def test_dlib_on_a_third_of_two_view2_folds(settings: Settings, lfw: Path, tmp_path: Path) -> None:
    """dlib is ~5x slower than MobileFaceNet on CPU: 400 pairs keep the suite short (full run: README)."""
    lines = (lfw / "verify_pairs_folds.csv").read_text().splitlines()
    rows = [ln for ln in lines[1:] if ln.rsplit(",", 1)[1] in ("0", "1")][::3]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("\n".join([lines[0], *rows]) + "\n")
    dlib = build_pipeline(settings, model="dlib", detector="mtcnn", no_face="center_crop")
    report = evaluate_verification(dlib, lfw, pairs, tmp_path / "out")
    assert report["model"] == "dlib" and report["n_pairs"] == 400
    assert report["accuracy_mean"] >= 0.97
