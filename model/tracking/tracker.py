"""A ByteTrack-style IoU tracker for faces.

Each detection round, confident detections are matched first to the live tracks (by IoU with each track's
box moved on by its velocity), then the less confident ones to the tracks still unmatched, so a face that
blurs for a frame keeps its track; confident detections left over start new tracks. A track that finds no
detection for `max_lost_frames` frames ends. Frame indices (not rounds) measure time, so detecting every
Nth frame keeps the same behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from model.types import Detection, FloatArray

# How much of a new velocity estimate replaces the old one (exponential smoothing).
VELOCITY_SMOOTHING = 0.5


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    match_iou: float = 0.25  # a detection joins a track only above this IoU with its predicted box
    high_score: float = 0.8  # detections at or above start tracks and are matched first
    max_lost_frames: int = 25  # a track unseen for more frames than this ends


@dataclass(slots=True)
class Track:
    """One face followed over frames. Owned and updated by the Tracker; callers only read it."""

    id: int
    detection: Detection  # the latest matched detection
    box: FloatArray  # the latest box, moved on by the velocity between detections
    first_frame: int
    last_frame: int  # the last frame with a matched detection
    hits: int = 1
    velocity: FloatArray = field(default_factory=lambda: np.zeros(4, dtype=np.float32))  # box change per frame

    def predicted(self, frame: int) -> FloatArray:
        """The box expected at `frame`, moving at the track's velocity."""
        return (self.detection.box + self.velocity * (frame - self.last_frame)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    matched: list[tuple[Track, Detection]]  # tracks seen this round (new ones included), each with its detection
    ended: list[Track]  # tracks lost for longer than max_lost_frames


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of every box in `a` (n x 4) with every box in `b` (m x 4), as an n x m array."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def greedy_match(iou: FloatArray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, column) taken best IoU first, each row and column once, all above `threshold`."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
    rows: set[int] = set()
    cols: set[int] = set()
    for r, c in order:
        if iou[r, c] <= threshold:
            break
        if r not in rows and c not in cols:
            pairs.append((int(r), int(c)))
            rows.add(int(r))
            cols.add(int(c))
    return pairs


class Tracker:
    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks)

    def update(self, frame: int, detections: Sequence[Detection]) -> TrackUpdate:
        """One detection round at `frame`: match, start and end tracks."""
        high = [d for d in detections if d.score >= self.options.high_score]
        low = [d for d in detections if d.score < self.options.high_score]
        matched = self._associate(frame, self._tracks, high)
        taken = {id(t) for t, _ in matched}
        matched += self._associate(frame, [t for t in self._tracks if id(t) not in taken], low)
        used = {id(d) for _, d in matched}
        for d in high:
            if id(d) not in used:
                track = Track(self._next_id, d, d.box.copy(), frame, frame)
                self._next_id += 1
                self._tracks.append(track)
                matched.append((track, d))
        return TrackUpdate(matched, self._end_lost(frame))

    def advance(self, frame: int) -> list[Track]:
        """A frame without detection: every track's box moved on to where it should be at `frame`."""
        for t in self._tracks:
            t.box = t.predicted(frame)
        return self.tracks

    def finish(self) -> list[Track]:
        """End every track (the source ended)."""
        ended, self._tracks = self._tracks, []
        return ended

    def _associate(self, frame: int, tracks: list[Track], detections: list[Detection]) -> list[tuple[Track, Detection]]:
        if not tracks or not detections:
            return []
        predicted = np.stack([t.predicted(frame) for t in tracks])
        boxes = np.stack([d.box for d in detections]).astype(np.float32)
        pairs = greedy_match(iou_matrix(predicted, boxes), self.options.match_iou)
        out = []
        for r, c in pairs:
            track, det = tracks[r], detections[c]
            self._follow(track, det, frame)
            out.append((track, det))
        return out

    @staticmethod
    def _follow(track: Track, det: Detection, frame: int) -> None:
        gap = max(1, frame - track.last_frame)
        step = (det.box - track.detection.box) / gap
        keep = 0.0 if track.hits == 1 else 1 - VELOCITY_SMOOTHING  # a track's first step is its velocity
        track.velocity = ((1 - keep) * step + keep * track.velocity).astype(np.float32)
        track.detection = det
        track.box = det.box.astype(np.float32)
        track.last_frame = frame
        track.hits += 1

    def _end_lost(self, frame: int) -> list[Track]:
        limit = self.options.max_lost_frames
        ended = [t for t in self._tracks if frame - t.last_frame > limit]
        self._tracks = [t for t in self._tracks if frame - t.last_frame <= limit]
        return ended
