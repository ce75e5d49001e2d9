"""The attendance test video (scripts/make_test_video.py): its truth is consistent, the mp4 reads back, and
YuNet finds the faces where the truth says they are."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.detection.factory import create_detector
from scripts.make_test_video import MAX_SIZE, MIN_SIZE, VideoOptions, make_video
from services.config import REPO_ROOT, Settings
from services.evaluation.attendance import TruthBox, VideoTruth

OPTIONS = VideoOptions(seconds=15.0, enrolled=2, strangers=1, cooldown_s=6.0, seed=3)


@pytest.fixture(scope="module")
def video(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VideoTruth]:
    out = tmp_path_factory.mktemp("video")
    return out, make_video(out, lfw, OPTIONS)


def iou(a: TruthBox, b: np.ndarray) -> float:
    w = max(0.0, min(a.x2, float(b[2])) - max(a.x1, float(b[0])))
    h = max(0.0, min(a.y2, float(b[3])) - max(a.y1, float(b[1])))
    inter = w * h
    return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + float((b[2] - b[0]) * (b[3] - b[1])) - inter)


def test_truth_is_consistent(video: tuple[Path, VideoTruth], lfw: Path, tmp_path: Path) -> None:
    out, truth = video
    assert VideoTruth.load(out / "truth.json") == truth  # loading validates: boxes in the frame, visits in order
    assert (truth.frames, truth.width, truth.height, truth.fps) == (375, 640, 480, 25.0)
    enrolled = [p for p in truth.people if p.enrolled]
    assert len(enrolled) == 2 and len(truth.people) == 3
    for person in truth.people:
        assert Path(person.video_image).parent == lfw.resolve() / "images" / person.name
        assert len(person.enroll_images) == (3 if person.enrolled else 0)
        assert person.video_image not in person.enroll_images
        assert all(Path(p).is_file() and Path(p).parent.name == person.name for p in person.enroll_images)
    # Every visit is 1.5-4 s of continuous boxes of its person, with a face of at least 80 px.
    frames_of = {p.name: sorted(b.frame for b in truth.boxes if b.name == p.name) for p in truth.people}
    for person in truth.people:
        seen = [f for v in person.visits for f in range(v.start, v.end + 1)]
        assert frames_of[person.name] == seen
        for visit in person.visits:
            assert 1.5 * truth.fps <= visit.end - visit.start + 1 <= 4 * truth.fps
            assert (
                max(b.size for b in truth.boxes if b.name == person.name and visit.start <= b.frame <= visit.end) >= 80
            )
    # Faces wholly in the frame are 40-160 px (those at an edge are clipped to it).
    inside = [b for b in truth.boxes if b.x1 > 0 and b.y1 > 0 and b.x2 < truth.width and b.y2 < truth.height]
    sizes = [b.size for b in inside]
    assert MIN_SIZE - 0.2 <= min(sizes) <= max(sizes) <= MAX_SIZE + 0.2
    assert max(Counter(b.frame for b in truth.boxes).values()) == 2
    # One person returns after the cooldown (an event is due), one within it (none is), strangers log nothing.
    cooldown = truth.cooldown_s * truth.fps
    returns = [(p.visits[i - 1], v) for p in enrolled for i, v in enumerate(p.visits) if i]
    assert any(v.expect_event and v.start - before.end > cooldown for before, v in returns)
    assert any(not v.expect_event and v.end - before.start < cooldown for before, v in returns)
    assert not any(v.expect_event for p in truth.people if not p.enrolled for v in p.visits)
    again = make_video(tmp_path, lfw, OPTIONS)  # the same seed: the same truth
    assert (tmp_path / "truth.json").read_bytes() == (out / "truth.json").read_bytes() and again == truth


def test_video_reads_back_and_yunet_finds_the_faces(video: tuple[Path, VideoTruth], settings: Settings) -> None:
    out, truth = video
    detector = create_detector("yunet", settings.model_dir)
    boxes: dict[int, list[TruthBox]] = {}
    for box in truth.boxes:
        boxes.setdefault(box.frame, []).append(box)
    capture = cv2.VideoCapture(str(out / "video.mp4"))
    best: list[tuple[float, float]] = []  # (face size, best IoU with a detection)
    count = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            assert frame.shape == (truth.height, truth.width, 3)
            if count in boxes:
                rgb = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                found = [d.box for d in detector.detect(rgb)]
                best += [(b.size, max((iou(b, f) for f in found), default=0.0)) for b in boxes[count]]
            count += 1
    finally:
        capture.release()
    assert count == truth.frames
    large = [score for size, score in best if size >= 48]
    assert len(large) > 100
    assert sum(score >= 0.3 for score in large) / len(large) >= 0.9


def test_misuse_is_one_line_and_exit_2(tmp_path: Path, lfw: Path) -> None:
    script = str(REPO_ROOT / "scripts" / "make_test_video.py")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for args, expected in [
        (["--lfw", str(tmp_path / "missing")], "--lfw: "),
        (["--lfw", str(tmp_path)], "images does not exist"),
        (["--lfw", str(lfw), "--seconds", "8"], "--seconds 8 is too short"),
    ]:
        proc = subprocess.run(
            [sys.executable, script, str(tmp_path / "out"), *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert proc.returncode == 2 and expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
