"""scripts/make_lowres_lfw.py: the central crop downscaled, LFW's names kept, the CSVs beside, a rerun resumes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from model.evaluation.protocols import DatasetError
from model.image_io import load_image
from scripts.make_lowres_lfw import lowres, make_variant


def test_the_central_crop_is_area_averaged_down() -> None:
    image = np.zeros((250, 250, 3), np.uint8)
    image[50:200, 50:200] = 200  # exactly the central 150x150
    small = lowres(image, 150, 64)
    assert small.shape == (64, 64, 3) and int(small.min()) == 200
    assert lowres(np.full((100, 120, 3), 7, np.uint8), 150, 64).shape == (64, 64, 3)  # smaller than the crop


def fake_lfw(root: Path) -> list[Path]:
    photos = []
    for person in ("Ann_A", "Bob_B"):
        for n in (1, 2):
            path = root / "images" / person / f"{person}_{n:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(n)
            cv2.imwrite(str(path), rng.integers(0, 255, (250, 250, 3), dtype=np.uint8))
            photos.append(path)
    (root / "gallery_split.csv").write_text("path,identity,role\nimages/Ann_A/Ann_A_0001.jpg,Ann_A,enroll\n")
    return photos


def test_the_variant_keeps_names_and_csvs_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    lfw, out = tmp_path / "lfw", tmp_path / "out"
    photos = fake_lfw(lfw)
    report = make_variant(lfw, out, 150, 64)
    assert report["written"] == report["photos"] == 4
    for src in photos:
        assert load_image(out / src.relative_to(lfw)).shape == (64, 64, 3)
    assert (out / "gallery_split.csv").read_text() == (lfw / "gallery_split.csv").read_text()
    assert make_variant(lfw, out, 150, 64)["written"] == 0
    (out / "images" / "Bob_B" / "Bob_B_0002.jpg").unlink()  # a run stopped before this photo
    assert make_variant(lfw, out, 150, 64)["written"] == 1


def test_a_folder_that_is_not_lfw_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not an LFW folder"):
        make_variant(tmp_path, tmp_path / "out", 150, 64)
