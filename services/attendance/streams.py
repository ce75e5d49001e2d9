"""Frames from a camera or video -> faces -> open-set matches -> attendance events (with cooldown)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from model.errors import ErrorInfo, FaceregError, NoFace, error_info
from model.pipeline import FaceEmbedding, ImageSource
from model.types import Detection, ImageArray
from services.attendance.events import record_event
from services.context import ServiceContext
from services.registry.galleries import check_contract, get_gallery
from services.search.identification import decide

SNAPSHOT_MARGIN = 0.4


@dataclass(frozen=True, slots=True)
class FrameResult:
    index: int
    faces: list[dict[str, object]]
    error: ErrorInfo | None = None  # the frame could not be read

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "faces": self.faces, "error": self.error.to_dict() if self.error else None}


def face_snapshot(frame: ImageArray, box: Sequence[float]) -> ImageArray:
    """The face with some context around it, for the attendance log."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * SNAPSHOT_MARGIN, (y2 - y1) * SNAPSHOT_MARGIN
    h, w = frame.shape[:2]
    top, bottom = max(0, int(y1 - my)), min(h, int(y2 + my))
    left, right = max(0, int(x1 - mx)), min(w, int(x2 + mx))
    return np.ascontiguousarray(frame[top:bottom, left:right])


def process_frames(
    ctx: ServiceContext,
    frames: Sequence[ImageSource],
    source: str,
    gallery_name: str | None = None,
    times: Sequence[datetime] | None = None,
    top_k: int = 3,
    min_quality: float = 0.0,
) -> list[FrameResult]:
    """Detect every face of every frame, embed them in one batch, identify, and log attendance."""
    gallery = get_gallery(ctx, gallery_name or ctx.settings.gallery)
    check_contract(gallery, ctx.pipeline)
    pipeline = ctx.pipeline
    loaded: list[tuple[int, ImageArray, list[FaceEmbedding]]] = []
    results: dict[int, FrameResult] = {}
    found: list[tuple[int, Detection]] = []  # (slot in `loaded`, face) of every face of every frame
    for i, frame in enumerate(frames):
        try:
            pixels = pipeline.load(frame)
            detections = pipeline.find_faces(pixels)
        except NoFace:  # FaceTooSmall too: no face is the normal state of a camera
            results[i] = FrameResult(i, [])
            continue
        except FaceregError as exc:
            results[i] = FrameResult(i, [], error_info(exc))  # anything else is reported per frame
            continue
        loaded.append((i, pixels, []))
        found += [(len(loaded) - 1, d) for d in detections]
    embedded = pipeline.embed_faces((loaded[slot][1], d) for slot, d in found)
    for (slot, _), face in zip(found, embedded, strict=True):
        loaded[slot][2].append(face)
    for i, pixels, faces in loaded:
        usable = [f for f in faces if f.quality.score >= min_quality]
        identities = decide(ctx, gallery, usable, top_k)
        out = []
        for ident in identities:
            event = record_event(
                ctx,
                ident.person_id,
                ident.display_name,
                source,
                ident.similarity,
                snapshot=face_snapshot(pixels, ident.box),
                when=times[i] if times else None,
            )
            out.append({**ident.to_dict(), "event_id": event.id if event else None})
        results[i] = FrameResult(i, out)
    return [results[i] for i in range(len(frames))]
