"""The face tracker: boxes in, tracks out."""

from __future__ import annotations

import numpy as np

from model.tracking import Tracker, TrackerOptions, iou_matrix
from model.types import Detection


def face(x: float, y: float, side: float = 60.0, score: float = 0.95) -> Detection:
    box = np.array([x, y, x + side, y + side], dtype=np.float32)
    return Detection(box=box, landmarks=np.zeros((5, 2), dtype=np.float32), score=score)


def test_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float32)
    assert np.allclose(iou_matrix(a, b), [[1.0, 0.0, 1 / 3]])
    assert iou_matrix(a, np.zeros((0, 4), dtype=np.float32)).shape == (1, 0)


def test_a_moving_face_keeps_one_track_and_two_faces_keep_theirs() -> None:
    tracker = Tracker()
    ids: dict[str, set[int]] = {"a": set(), "b": set()}
    for f in range(30):
        update = tracker.update(f, [face(10 + 4 * f, 50), face(400 - 4 * f, 200)])
        for track, det in update.matched:
            ids["a" if det.box[1] < 100 else "b"].add(track.id)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"]


def test_velocity_carries_a_fast_face_across_skipped_frames() -> None:
    tracker = Tracker()
    first = tracker.update(0, [face(0, 0, 40)]).matched[0][0]
    tracker.update(3, [face(20, 0, 40)])  # 20 px in 3 frames: still overlapping
    tracker.advance(6)
    assert abs(float(first.box[0]) - 40.0) < 1.0  # predicted between detections
    update = tracker.update(9, [face(60, 0, 40)])  # 40 px from its last box: no overlap without the velocity
    assert [t.id for t, _ in update.matched] == [first.id]


def test_a_low_score_detection_continues_a_track_but_never_starts_one() -> None:
    tracker = Tracker(TrackerOptions(high_score=0.8))
    assert tracker.update(0, [face(100, 100, score=0.6)]).matched == []
    track = tracker.update(1, [face(100, 100, score=0.95)]).matched[0][0]
    update = tracker.update(2, [face(102, 100, score=0.6)])
    assert [t.id for t, _ in update.matched] == [track.id]


def test_a_lost_track_ends_after_max_lost_frames_and_a_new_face_gets_a_new_id() -> None:
    tracker = Tracker(TrackerOptions(max_lost_frames=5))
    track = tracker.update(0, [face(0, 0)]).matched[0][0]
    assert tracker.update(5, []).ended == []
    assert [t.id for t in tracker.update(6, []).ended] == [track.id]
    again = tracker.update(7, [face(0, 0)]).matched[0][0]
    assert again.id != track.id
    assert [t.id for t in tracker.finish()] == [again.id]
    assert tracker.tracks == []
