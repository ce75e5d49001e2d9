"""Camera heartbeats and live frames on the fakes (mongomock), with explicit times only (never the clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import cv2
import pytest

from model.errors import ImageTooLarge, InvalidImage
from services.attendance.cameras import (
    DOWN_AFTER_S,
    MAX_FRAME_BYTES,
    CameraState,
    Heartbeat,
    camera_states,
    clock_text,
    forget,
    live_frame,
    publish,
    stop,
)
from services.context import ServiceContext
from services.errors import ServiceError
from tests.unit.fakes import FaceSpec, draw

T0 = datetime(2026, 3, 10, 9, 30, 0, tzinfo=UTC)
KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30: T0 is 15:00:00 there
BEAT = Heartbeat(
    camera="door",
    state="running",
    fps=24.84,
    last_frame_at=T0,
    faces_in_view=2,
    reconnects=0,
    frames_read=1200,
    frames_dropped=3,
    run_id="run-1",
    host="gatehost",
    pid=4242,
)


def jpeg(identity: int = 3) -> bytes:
    ok, data = cv2.imencode(".jpg", draw([FaceSpec(identity)]))
    assert ok
    return data.tobytes()


def state_of(ctx: ServiceContext, camera: str, now: datetime) -> CameraState:
    (found,) = [s for s in camera_states(ctx, now) if s.camera == camera]
    return found


def test_a_beat_is_read_back_as_published(fake_context: ServiceContext) -> None:
    publish(fake_context, BEAT, T0)
    (state,) = camera_states(fake_context, T0 + timedelta(seconds=1))
    assert state.beat == BEAT
    assert (state.updated_at, state.frame_at, state.down, state.status) == (T0, None, False, "running")
    assert state.summary(KOLKATA) == "running 24.8 FPS, 2 faces"
    assert live_frame(fake_context, "door") is None


def test_a_camera_is_down_when_its_last_beat_is_older_than_ten_seconds(fake_context: ServiceContext) -> None:
    publish(fake_context, BEAT, T0)
    at_limit = state_of(fake_context, "door", T0 + timedelta(seconds=DOWN_AFTER_S))
    assert not at_limit.down and at_limit.status == "running"
    past = state_of(fake_context, "door", T0 + timedelta(seconds=DOWN_AFTER_S, milliseconds=1))
    assert past.down and past.status == "down"
    assert past.summary(KOLKATA) == "down since 15:00:00"
    assert past.summary(UTC) == "down since 09:30:00"
    publish(fake_context, BEAT, T0 + timedelta(seconds=11))  # it beats again: up
    assert not state_of(fake_context, "door", T0 + timedelta(seconds=12)).down


def test_a_beat_from_a_clock_ahead_of_the_reader_counts_as_fresh(fake_context: ServiceContext) -> None:
    publish(fake_context, BEAT, T0 + timedelta(seconds=3))
    assert not state_of(fake_context, "door", T0).down


@pytest.mark.parametrize(
    ("state", "message", "summary"),
    [
        ("stopped", "", "stopped at 15:00:00"),
        ("ended", "", "ended at 15:00:00"),
        ("failed", "no frame for 15 s", "failed at 15:00:00: no frame for 15 s"),
    ],
)
def test_a_camera_that_says_it_stopped_is_down_at_once(
    fake_context: ServiceContext, state: str, message: str, summary: str
) -> None:
    publish(fake_context, replace(BEAT, state=state, message=message), T0)
    found = state_of(fake_context, "door", T0)
    assert found.down and found.status == state
    assert found.summary(KOLKATA) == summary


def test_summaries_of_the_live_states(fake_context: ServiceContext) -> None:
    publish(fake_context, replace(BEAT, state="reconnecting", reconnects=3), T0)
    publish(fake_context, replace(BEAT, camera="hall", state="connecting"), T0)
    publish(fake_context, replace(BEAT, camera="lab", faces_in_view=1, fps=30.0), T0)
    now = T0 + timedelta(seconds=2)
    assert [(s.camera, s.summary(UTC)) for s in camera_states(fake_context, now)] == [
        ("door", "reconnecting (3)"),
        ("hall", "connecting"),
        ("lab", "running 30.0 FPS, 1 face"),
    ]


def test_times_carry_their_date_when_not_on_the_readers_day() -> None:
    assert clock_text(T0, KOLKATA, T0) == "15:00:00"
    assert clock_text(T0, KOLKATA, T0 + timedelta(hours=9)) == "2026-03-10 15:00:00"  # 00:00 the next day there
    assert clock_text(None, UTC, T0) == "-"


def test_the_frame_is_kept_until_a_new_one_replaces_it(fake_context: ServiceContext) -> None:
    first, second = jpeg(3), jpeg(40)
    publish(fake_context, BEAT, T0, first)
    assert live_frame(fake_context, "door") == first
    publish(fake_context, replace(BEAT, faces_in_view=0), T0 + timedelta(seconds=1))  # a beat without a frame
    assert live_frame(fake_context, "door") == first
    assert state_of(fake_context, "door", T0 + timedelta(seconds=1)).frame_at == T0
    publish(fake_context, BEAT, T0 + timedelta(seconds=2), second)
    assert live_frame(fake_context, "door") == second
    assert fake_context.db.cameras.count_documents({}) == 1  # one document per camera


def test_frames_over_the_cap_or_not_jpeg_are_refused(fake_context: ServiceContext) -> None:
    publish(fake_context, BEAT, T0, jpeg())
    at_cap = b"\xff\xd8\xff" + bytes(MAX_FRAME_BYTES - 3)
    publish(fake_context, BEAT, T0 + timedelta(seconds=1), at_cap)
    assert live_frame(fake_context, "door") == at_cap
    with pytest.raises(ImageTooLarge, match=r"live frame of camera 'door' is 2\.0 MB; at most 2 MB") as err:
        publish(fake_context, BEAT, T0 + timedelta(seconds=2), at_cap + b"\0")
    assert err.value.code == "image_too_large"
    with pytest.raises(InvalidImage, match="not a JPEG image"):
        publish(fake_context, BEAT, T0 + timedelta(seconds=2), b"\x89PNG\r\n\x1a\n")
    # A refused frame changes nothing, the beat included.
    assert live_frame(fake_context, "door") == at_cap
    assert state_of(fake_context, "door", T0 + timedelta(seconds=2)).updated_at == T0 + timedelta(seconds=1)


def test_a_clean_stop_removes_the_frame(fake_context: ServiceContext) -> None:
    publish(fake_context, BEAT, T0, jpeg())
    assert stop(fake_context, "door", "run-1", T0 + timedelta(seconds=5))
    state = state_of(fake_context, "door", T0 + timedelta(seconds=5))
    assert (state.status, state.down, state.frame_at, state.beat.faces_in_view) == ("stopped", True, None, 0)
    assert state.summary(UTC) == "stopped at 09:30:05"
    assert live_frame(fake_context, "door") is None
    doc = fake_context.db.cameras.find_one({"_id": "door"})
    assert doc is not None and "frame" not in doc and "frame_at" not in doc


def test_an_old_runs_stop_leaves_the_new_run_alone(fake_context: ServiceContext) -> None:
    frame = jpeg()
    publish(fake_context, BEAT, T0, jpeg(40))
    publish(fake_context, replace(BEAT, run_id="run-2"), T0 + timedelta(seconds=1), frame)  # a restart took over
    assert not stop(fake_context, "door", "run-1", T0 + timedelta(seconds=2))
    state = state_of(fake_context, "door", T0 + timedelta(seconds=2))
    assert (state.status, state.beat.run_id, state.updated_at) == ("running", "run-2", T0 + timedelta(seconds=1))
    assert live_frame(fake_context, "door") == frame
    assert not stop(fake_context, "nowhere", "run-2", T0)  # no such camera: nothing created
    assert [s.camera for s in camera_states(fake_context, T0)] == ["door"]


def test_forget_removes_the_camera_and_audits_it(fake_context: ServiceContext) -> None:
    publish(fake_context, BEAT, T0, jpeg())
    assert forget(fake_context, "door", "dashboard:alice")
    assert camera_states(fake_context, T0) == [] and live_frame(fake_context, "door") is None
    assert not forget(fake_context, "door", "dashboard:alice")
    (entry,) = fake_context.db.audit.find({"subject": "camera:door"})
    assert (entry["actor"], entry["action"]) == ("dashboard:alice", "camera.forget")


def test_times_must_be_aware_and_cameras_named(fake_context: ServiceContext) -> None:
    with pytest.raises(ValueError, match="aware"):
        publish(fake_context, BEAT, T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="aware"):
        camera_states(fake_context, T0.replace(tzinfo=None))
    with pytest.raises(ServiceError, match="needs a name"):
        publish(fake_context, replace(BEAT, camera=""), T0)
