"""Cameras: every realtime source's state (running, reconnecting, down, stopped) and the chosen camera's live
frame, refreshed every REFRESH_S seconds. Times are the site's (settings.timezone)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, tzinfo

import streamlit as st

from dashboard.session import actor_name, context, is_admin, require_user, signed_in_user
from services.attendance.cameras import DOWN_AFTER_S, CameraState, camera_states, clock_text, forget, live_frame
from services.reports.exports import safe_cell
from services.storage.records import utcnow

REFRESH_S = 1.5


def render() -> None:
    require_user()
    st.title("Cameras")
    st.caption(
        f"Each running `scripts/realtime_attendance.py` source reports here about once a second; one silent for "
        f"{DOWN_AFTER_S:g} s shows as down. Times in {context().settings.tz}."
    )
    live()


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    # This polls by itself: it checks the session without counting as activity, and a session that ended
    # while it polled reruns the whole app (to the sign-in form).
    if signed_in_user(touch=False) is None:
        st.rerun()
    now = utcnow()
    tz = context().settings.tz
    states = camera_states(context(), now)
    if not states:
        no_cameras()
        return
    st.caption(tally(states, tz, now))
    table(states, tz, now)
    names = [s.camera for s in states]
    chosen = st.selectbox("Live view", names, key="camera_live")
    state = states[names.index(chosen)] if chosen in names else states[0]
    live_view(state, tz)


def no_cameras() -> None:
    st.info(
        "No camera has reported yet. Start one: `python scripts/realtime_attendance.py 0` (the first webcam), "
        "`python scripts/realtime_attendance.py door.mp4` (a video file) or "
        "`python scripts/realtime_attendance.py rtsp://camera.local:554/stream` (an RTSP or HTTP stream)."
    )


def tally(states: list[CameraState], tz: tzinfo, now: datetime) -> str:
    """ "2 running, 1 down · as of 15:00:02": how many cameras are in each state, and when that was read."""
    counts = Counter(s.status for s in states)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f" · as of {clock_text(now, tz, now)}"


def table(states: list[CameraState], tz: tzinfo, now: datetime) -> None:
    st.dataframe(
        [
            {
                "camera": safe_cell(s.camera),
                "state": s.summary(tz),
                "FPS": round(s.beat.fps, 1) if s.status == "running" else None,
                "faces in view": s.beat.faces_in_view if not s.down else None,
                "last frame": clock_text(s.beat.last_frame_at, tz, now),
                "reconnects": s.beat.reconnects,
                "frames read": s.beat.frames_read,
                "dropped": s.beat.frames_dropped,
                "host": safe_cell(f"{s.beat.host} (pid {s.beat.pid})"),
                "message": safe_cell(s.beat.message),
            }
            for s in states
        ],
        hide_index=True,
        placeholder="-",
    )


def live_view(state: CameraState, tz: tzinfo) -> None:
    frame = live_frame(context(), state.camera) if state.frame_at else None
    if frame is None:
        st.caption(f"{state.camera}: no live frame ({state.summary(tz)}).")
    else:
        when = clock_text(state.frame_at, tz, state.checked_at)
        note = "" if not state.down else f" · {state.summary(tz)}: the last frame it sent"
        st.image(frame, caption=f"{state.camera} · {when}{note}", width="content")
    if state.down and is_admin() and st.button("Remove from the list", key=f"camera_forget:{state.camera}"):
        forget(context(), state.camera, actor_name())
        st.rerun()


render()
