"""Per-camera face tracks: detections in, tracks out (pure; no I/O)."""

from model.tracking.tracker import Track, Tracker, TrackerOptions, TrackUpdate, iou_matrix

__all__ = ["Track", "TrackUpdate", "Tracker", "TrackerOptions", "iou_matrix"]
