"""Camera heartbeats and live frames on the real MongoDB-protocol server, and the dashboard's Cameras page
(AppTest). Every time is explicit: the page's clock is moved with time-machine, never read as it is."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from streamlit.testing.v1 import AppTest

from dashboard.auth import User, set_user
from services.attendance.cameras import (
    MAX_FRAME_BYTES,
    Heartbeat,
    camera_states,
    live_frame,
    publish,
    stop,
)
from services.config import Settings
from services.context import ServiceContext, open_context
from tests.integration.apptest import dashboard_environ, start, texts
from tests.integration.conftest import isolated_settings

T0 = datetime(2026, 3, 10, 9, 30, 0, tzinfo=UTC)  # 15:00:00 at the site (Asia/Kolkata)
ADMIN, VIEWER = User("alice", "admin"), User("victor", "viewer")
BEAT = Heartbeat(
    camera="front-door",
    state="running",
    fps=24.8,
    last_frame_at=T0,
    faces_in_view=2,
    reconnects=1,
    frames_read=900,
    frames_dropped=4,
    run_id="run-a",
    host="gatehost",
    pid=4242,
)


@pytest.fixture
def site(infra: Settings, tmp_path: Path) -> Iterator[ServiceContext]:
    """A database of its own (no face model), and a dashboard environment on it with an admin and a viewer."""
    settings = isolated_settings(infra, tmp_path, timezone="Asia/Kolkata")
    users = settings.data_dir / "users.json"
    set_user(users, ADMIN.name, "admin", "alice-password-1")
    set_user(users, VIEWER.name, "viewer", "victor-password-1")
    with dashboard_environ(settings, users):
        yield open_context(settings)


@pytest.fixture
def frame(lfw: Path) -> bytes:
    """A real camera-like frame: an LFW photo's JPEG bytes."""
    return (lfw / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg").read_bytes()


def page_at(user: User, now: datetime) -> AppTest:
    """The Cameras page as `user` sees it when the clock says `now`."""
    with time_machine.travel(now, tick=False):
        return start(user, "cameras")


def test_beats_frames_and_a_clean_stop_on_the_server(site: ServiceContext, frame: bytes) -> None:
    publish(site, BEAT, T0, frame)
    (state,) = camera_states(site, T0 + timedelta(seconds=1))
    assert state.beat == BEAT and state.frame_at == T0 and not state.down
    assert live_frame(site, "front-door") == frame
    doc = site.db.cameras.find_one({"_id": "front-door"})
    assert doc is not None and isinstance(doc["frame"], bytes)  # BSON binary in the camera's own document
    assert camera_states(site, T0 + timedelta(seconds=10, milliseconds=1))[0].down
    assert not stop(site, "front-door", "run-old", T0 + timedelta(seconds=2))
    assert live_frame(site, "front-door") == frame
    assert stop(site, "front-door", "run-a", T0 + timedelta(seconds=2))
    (state,) = camera_states(site, T0 + timedelta(seconds=2))
    assert (state.status, state.frame_at) == ("stopped", None)
    assert live_frame(site, "front-door") is None


def test_a_frame_at_the_size_cap_is_stored(site: ServiceContext) -> None:
    big = b"\xff\xd8\xff" + bytes(MAX_FRAME_BYTES - 3)
    publish(site, BEAT, T0, big)
    assert live_frame(site, "front-door") == big


def test_concurrent_first_beats_of_one_camera_make_one_document(site: ServiceContext) -> None:
    """Two publishers (a restart overlapping the old run, say) racing on a camera that has no document yet."""
    beats = [replace(BEAT, camera=f"cam-{n % 4}", frames_read=n) for n in range(32)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda b: publish(site, b, T0 + timedelta(milliseconds=b.frames_read)), beats))
    states = camera_states(site, T0 + timedelta(seconds=1))
    assert [s.camera for s in states] == ["cam-0", "cam-1", "cam-2", "cam-3"]
    assert site.db.cameras.count_documents({}) == 4


def test_the_page_says_how_to_start_a_camera_when_there_is_none(site: ServiceContext) -> None:
    at = page_at(VIEWER, T0)
    assert [t.value for t in at.title] == ["Cameras"]
    assert "python scripts/realtime_attendance.py 0" in texts(at)
    assert "rtsp://" in texts(at) and not at.dataframe and not at.image


def test_the_page_shows_each_cameras_state_and_the_live_frame(site: ServiceContext, frame: bytes) -> None:
    publish(site, BEAT, T0, frame)
    publish(site, replace(BEAT, camera="lobby", state="reconnecting", reconnects=3, run_id="run-b"), T0)
    publish(site, replace(BEAT, camera="yard", run_id="run-c"), T0 - timedelta(minutes=5), frame)
    at = page_at(VIEWER, T0 + timedelta(seconds=2))
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value.set_index("camera")
    assert list(table.index) == ["front-door", "lobby", "yard"]
    assert table.loc["front-door", "state"] == "running 24.8 FPS, 2 faces"
    assert table.loc["front-door", "last frame"] == "15:00:00"  # the site's time, not UTC
    assert table.loc["lobby", "state"] == "reconnecting (3)"
    assert table.loc["yard", "state"] == "down since 14:55:00"
    assert table.loc["front-door", "host"] == "gatehost (pid 4242)"
    assert "1 down, 1 reconnecting, 1 running · as of 15:00:02" in texts(at)
    (image,) = at.image
    assert at.selectbox(key="camera_live").value == "front-door"
    assert "front-door · 15:00:00" in image.captions[0]

    with time_machine.travel(T0 + timedelta(seconds=3), tick=False):
        at.selectbox(key="camera_live").select("lobby").run()
        assert not at.image and "lobby: no live frame (reconnecting (3))." in texts(at)
        at.selectbox(key="camera_live").select("yard").run()
    (image,) = at.image
    assert image.captions[0] == "yard · 14:55:00 · down since 14:55:00: the last frame it sent"
    assert [b.key for b in at.button] == ["logout"]  # a viewer removes no camera


def test_an_admin_removes_a_camera_that_is_down_with_its_last_frame(site: ServiceContext, frame: bytes) -> None:
    publish(site, replace(BEAT, camera="yard"), T0 - timedelta(minutes=5), frame)
    at = page_at(ADMIN, T0)
    (image,) = at.image
    assert "the last frame it sent" in image.captions[0]
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        at.button(key="camera_forget:yard").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert live_frame(site, "yard") is None and camera_states(site, T0) == []
    assert "python scripts/realtime_attendance.py 0" in texts(at)
    entry = site.db.audit.find_one({"subject": "camera:yard"})
    assert entry is not None and (entry["actor"], entry["action"]) == ("dashboard:alice", "camera.forget")
