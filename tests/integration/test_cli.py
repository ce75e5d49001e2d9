"""The command-line contracts of verify_faces.py and evaluate.py, run as a user runs them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import REPO_ROOT
from tests.unit.test_image_io import png_declaring


def run_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / str(args[0])), *map(str, args[1:])],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        check=False,
    )


def last_json(stdout: str) -> dict:  # type: ignore[type-arg]
    return json.loads(stdout.strip().splitlines()[-1])


def test_verify_faces_prints_one_json_object(lfw_image) -> None:  # type: ignore[no-untyped-def]
    proc = run_script(
        "verify_faces.py", lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2), "--model", "mobilefacenet"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) >= {"similarity", "is_same", "threshold", "model", "contract"}
    assert result["model"] == "mobilefacenet" and result["is_same"] is True
    assert result["contract"].startswith("mobilefacenet-128d-")


def test_verify_faces_threshold_flag_decides(lfw_image) -> None:  # type: ignore[no-untyped-def]
    proc = run_script(
        "verify_faces.py",
        lfw_image("Aaron_Peirsol", 1),
        lfw_image("Aaron_Peirsol", 2),
        "--model",
        "mobilefacenet",
        "--runtime",
        "onnx",
        "--threshold",
        "0.99",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["threshold"] == 0.99 and result["is_same"] is False


def _bad_inputs(d: Path, good: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (file, expected error type, words of its message)."""
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("hello")
    data = good.read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (d / "bomb.png").write_bytes(png_declaring(30000, 30000))
    return {
        "missing": (d / "missing.jpg", "argument image_a", "does not exist"),
        "empty": (d / "empty.jpg", "InvalidImage", "empty"),
        "not-an-image": (d / "text.jpg", "InvalidImage", "not an image"),
        "truncated": (d / "truncated.jpg", "InvalidImage", "truncated"),
        "bomb": (d / "bomb.png", "ImageTooLarge", "pixels"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "not-an-image", "truncated", "bomb"])
def test_verify_faces_bad_input_exits_2_without_a_traceback(tmp_path: Path, lfw_image, case: str) -> None:  # type: ignore[no-untyped-def]
    good = lfw_image("Aaron_Peirsol", 1)
    bad, error, words = _bad_inputs(tmp_path, good)[case]
    proc = run_script("verify_faces.py", bad, good, "--model", "mobilefacenet")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"error: {error}" in proc.stderr and words in proc.stderr
    assert sum(line.startswith(("error:", "verify_faces.py: error:")) for line in proc.stderr.splitlines()) == 1


def test_verify_faces_no_face_exits_2(tmp_path: Path, lfw_image) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.new("RGB", (300, 300), (200, 190, 180)).save(blank)
    proc = run_script("verify_faces.py", blank, lfw_image("Aaron_Peirsol", 1), "--model", "mobilefacenet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: NoFace" in proc.stderr


def test_unknown_model_exits_2_with_the_choices(lfw_image) -> None:  # type: ignore[no-untyped-def]
    proc = run_script("verify_faces.py", lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2), "--model", "vgg")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "mobilefacenet" in proc.stderr


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_evaluate_verify_writes_report_and_roc(lfw: Path, tmp_path: Path) -> None:
    with (lfw / "verify_pairs_folds.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["fold"]) < 2]
    subset = [rows[i] for i in range(0, len(rows), 10)]  # 120 pairs of folds 0 and 1
    pairs = _write_csv(
        tmp_path / "pairs.csv",
        ["path_a", "path_b", "same", "fold"],
        [[r["path_a"], r["path_b"], r["same"], r["fold"]] for r in subset],
    )
    out = tmp_path / "out"
    proc = run_script(
        "evaluate.py", "verify", "--root", lfw, "--pairs", pairs, "--model", "mobilefacenet", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert {
        "model",
        "contract",
        "n_pairs",
        "n_failed",
        "accuracy_mean",
        "accuracy_std",
        "roc_auc",
        "eer",
        "tar_at_far",
        "threshold",
    } <= set(report)
    assert report["n_pairs"] == 120 and report["folds_evaluated"] == 2
    assert report["accuracy_mean"] > 0.9
    assert report["tar_at_far"]["0.001"] is None  # 60 impostor pairs cannot support FAR 1e-3
    assert (out / "roc.png").stat().st_size > 1000
    assert json.loads((out / "report.json").read_text())["n_pairs"] == 120


def test_evaluate_identify_reports_top_k(lfw: Path, tmp_path: Path) -> None:
    with (lfw / "gallery_split.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    people = sorted({r["identity"] for r in rows})[:15]
    subset = [r for r in rows if r["identity"] in people]
    subset = [r for r in subset if r["role"] == "enroll"] + [r for r in subset if r["role"] == "probe"][:60]
    split = _write_csv(
        tmp_path / "split.csv", ["path", "identity", "role"], [[r["path"], r["identity"], r["role"]] for r in subset]
    )
    proc = run_script(
        "evaluate.py",
        "identify",
        "--root",
        lfw,
        "--split",
        split,
        "--model",
        "mobilefacenet",
        "--out",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report["n_identities"] == 15 and report["n_probes"] == 60
    assert report["top1"] <= report["top3"] <= report["top5"] and report["top1"] > 0.85
    assert (tmp_path / "out" / "topk.png").is_file()


def test_evaluate_bad_csv_exits_2(tmp_path: Path, lfw: Path) -> None:
    bad = _write_csv(tmp_path / "bad.csv", ["a", "b"], [[1, 2]])
    proc = run_script("evaluate.py", "verify", "--root", lfw, "--pairs", bad, "--model", "mobilefacenet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "missing column" in proc.stderr
