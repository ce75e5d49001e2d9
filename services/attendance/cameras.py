"""The live side of realtime attendance: each running camera's heartbeat and its latest annotated frame.

One document per camera in the `cameras` collection (`_id` = the camera's name), replaced by every heartbeat in
one upsert; the frame (JPEG bytes, at most MAX_FRAME_BYTES) lives in the same document, so a beat and its frame
are never out of step. A camera is down when its last beat is older than DOWN_AFTER_S or it said it stopped
or failed. The live frame shows people's faces: it is removed on a clean stop (`stop`) or with the camera
(`forget`), and only the signed-in dashboard reads it.

Every time is an aware UTC datetime passed in (`now`); nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, ClassVar

from bson import Binary

from model.errors import ImageTooLarge, InvalidImage
from services.context import ServiceContext
from services.errors import ServiceError
from services.storage.audit import audit
from services.storage.db import Doc
from services.storage.records import Record, as_utc

DOWN_AFTER_S = 10.0
MAX_FRAME_BYTES = 2 * 1024 * 1024
# States a source reports when it has stopped delivering frames for good (capture's "ended": a file's end).
FINAL_STATES = frozenset({"stopped", "failed", "ended"})
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True, slots=True)
class Heartbeat(Record):
    """What a running source says about itself, about once a second."""

    KEY: ClassVar[str | None] = "camera"

    camera: str
    state: str  # capture's states ("connecting", "running", "reconnecting", "ended", "stopped") or "failed"
    fps: float  # frames processed per second, lately
    last_frame_at: datetime | None  # the time of the newest frame read
    faces_in_view: int
    reconnects: int
    frames_read: int
    frames_dropped: int
    run_id: str  # one run of the realtime script on this camera
    host: str
    pid: int
    message: str = ""  # the latest notice ("reconnecting in 4 s: connection refused")


@dataclass(frozen=True, slots=True)
class CameraState:
    """A camera as the dashboard shows it at `checked_at`."""

    beat: Heartbeat
    updated_at: datetime  # when its last heartbeat was published
    frame_at: datetime | None  # when its live frame was published; None: no frame stored
    checked_at: datetime
    down: bool  # the last beat is older than DOWN_AFTER_S, or the camera stopped, ended or failed

    @property
    def camera(self) -> str:
        return self.beat.camera

    @property
    def status(self) -> str:
        """The beat's state, or "down" for a camera that went silent without saying it stopped."""
        return "down" if self.down and self.beat.state not in FINAL_STATES else self.beat.state

    def summary(self, tz: tzinfo) -> str:
        """One line: "running 24.8 FPS, 2 faces", "reconnecting (3)", "down since 11:02:03" (times in `tz`)."""
        beat, since = self.beat, clock_text(self.updated_at, tz, self.checked_at)
        match self.status:
            case "running":
                faces = "1 face" if beat.faces_in_view == 1 else f"{beat.faces_in_view} faces"
                return f"running {beat.fps:.1f} FPS, {faces}"
            case "reconnecting":
                return f"reconnecting ({beat.reconnects})"
            case "down":
                return f"down since {since}"
            case "failed":
                return f"failed at {since}" + (f": {beat.message}" if beat.message else "")
            case "stopped" | "ended" as final:
                return f"{final} at {since}"
            case other:
                return other


def clock_text(when: datetime | None, tz: tzinfo, now: datetime) -> str:
    """`when` in `tz`: the time alone on `now`'s day there, else with its date; "-" for None."""
    if when is None:
        return "-"
    local = as_utc(when).astimezone(tz)
    same_day = local.date() == as_utc(now).astimezone(tz).date()
    return f"{local:%H:%M:%S}" if same_day else f"{local:%Y-%m-%d %H:%M:%S}"


def publish(ctx: ServiceContext, beat: Heartbeat, now: datetime, frame_jpeg: bytes | None = None) -> None:
    """Store `beat` as the camera's state at `now`, with `frame_jpeg` as its live frame when given (otherwise
    the stored frame stays): one atomic upsert. A frame must be JPEG bytes of at most MAX_FRAME_BYTES."""
    if not beat.camera:
        raise ServiceError("a camera needs a name")
    changes: dict[str, Any] = {k: v for k, v in beat.to_doc().items() if k != "_id"}
    changes["updated_at"] = _aware(now)
    if frame_jpeg is not None:
        check_frame(beat.camera, frame_jpeg)
        changes |= {"frame": Binary(frame_jpeg), "frame_at": changes["updated_at"]}
    ctx.db.cameras.update_one({"_id": beat.camera}, {"$set": changes}, upsert=True)


def check_frame(camera: str, frame_jpeg: bytes) -> None:
    """InvalidImage unless `frame_jpeg` is JPEG bytes; ImageTooLarge above MAX_FRAME_BYTES."""
    if not frame_jpeg.startswith(JPEG_MAGIC):
        raise InvalidImage(f"the live frame of camera {camera!r} is not a JPEG image")
    if len(frame_jpeg) > MAX_FRAME_BYTES:
        raise ImageTooLarge(
            f"the live frame of camera {camera!r} is {len(frame_jpeg) / 2**20:.1f} MB; at most "
            f"{MAX_FRAME_BYTES / 2**20:g} MB is stored: publish a smaller or lower-quality JPEG"
        )


def camera_states(ctx: ServiceContext, now: datetime) -> list[CameraState]:
    """Every camera that has published, by name, as of `now` (frames are not read here)."""
    checked = _aware(now)
    return [camera_state(doc, checked) for doc in ctx.db.cameras.find({}, {"frame": 0}).sort("_id", 1)]


def camera_state(doc: Doc, now: datetime) -> CameraState:
    """The state of one stored camera document as of `now`."""
    beat = Heartbeat.from_doc(doc)
    updated = as_utc(doc["updated_at"])
    silent = (now - updated).total_seconds() > DOWN_AFTER_S
    frame_at = doc.get("frame_at")
    return CameraState(beat, updated, as_utc(frame_at) if frame_at else None, now, silent or beat.state in FINAL_STATES)


def live_frame(ctx: ServiceContext, camera: str) -> bytes | None:
    """The camera's latest annotated frame (JPEG bytes), or None when it has none."""
    doc = ctx.db.cameras.find_one({"_id": camera}, {"frame": 1})
    frame = doc.get("frame") if doc else None
    return bytes(frame) if frame is not None else None


def stop(ctx: ServiceContext, camera: str, run_id: str, now: datetime) -> bool:
    """A clean stop of run `run_id`: the camera shows "stopped" and its live frame is removed. A camera that a
    newer run has taken over is left alone (False)."""
    result = ctx.db.cameras.update_one(
        {"_id": camera, "run_id": run_id},
        {"$set": {"state": "stopped", "updated_at": _aware(now), "faces_in_view": 0}, "$unset": _FRAME_FIELDS},
    )
    return result.matched_count == 1


def forget(ctx: ServiceContext, camera: str, actor: str) -> bool:
    """Remove a camera that is gone for good, and its last frame, from the list (audited); False if there was
    none. A camera that is still running comes back with its next beat."""
    removed = ctx.db.cameras.delete_one({"_id": camera}).deleted_count == 1
    if removed:
        audit(ctx, actor, "camera.forget", f"camera:{camera}")
    return removed


_FRAME_FIELDS = {"frame": "", "frame_at": ""}


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("camera times must be aware datetimes (UTC)")
    return now
