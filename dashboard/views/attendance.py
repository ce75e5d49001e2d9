"""Attendance: who was seen when, per day and per person; unknown faces with their snapshots; CSV export.
Days and times are the site's (settings.timezone); the stored times are UTC."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta, tzinfo

import streamlit as st

from dashboard.pictures import thumbnail
from dashboard.session import context, require_user
from services.attendance.events import (
    AttendanceEvent,
    DailyPresence,
    daily_report,
    events,
    local_day,
    site_today,
    sources,
)
from services.registry.persons import search_persons
from services.reports.attendance import report_csv
from services.reports.exports import safe_cell

SNAPSHOT_COLUMNS = 6
EVENT_ROWS = 500  # the newest events listed; the CSV export has them all


def render() -> None:
    require_user()
    st.title("Attendance")
    ctx = context()
    tz = ctx.settings.tz
    today = site_today(ctx, tz=tz)
    cols = st.columns(3)
    picked = cols[0].date_input(
        f"Days ({tz})",
        (today - timedelta(days=6), today),
        max_value=today,
        key="attendance_days",
        help="Days and times are in the site's time zone (FACEREG_TIMEZONE).",
    )
    start, end = (picked[0], picked[-1]) if isinstance(picked, tuple) and picked else (today, today)
    source = cols[1].selectbox("Camera / source", ["all", *sources(ctx)], key="attendance_source")
    person_names = person_choices()
    person = cols[2].selectbox("Person", ["everyone", *person_names], key="attendance_person")
    src = None if source == "all" else source
    pid = person_names.get(person)
    found = events(ctx, start, end, person_id=pid, source=src, tz=tz)
    st.caption(f"{len(found)} event(s) from {start} to {end} ({tz}).")
    daily_chart(found, start, end, tz)
    per_person(start, end, src, pid, tz)
    event_log(found, tz)
    unknown_faces([e for e in found if e.person_id is None and e.snapshot_path], tz)
    st.download_button(
        "Export CSV",
        report_csv(ctx, start, end, src, pid, tz=tz),
        file_name=f"attendance_{start}_{end}.csv",
        mime="text/csv",
        icon=":material/download:",
        key="attendance_csv",
    )


@st.cache_data(ttl=30, show_spinner=False)
def _persons(mongo_uri: str) -> dict[str, str]:
    persons, _ = search_persons(context(), limit=5000)
    return {p.display_name + (f" ({p.external_id})" if p.external_id else ""): p.id for p in persons}


def person_choices() -> dict[str, str]:
    return _persons(context().settings.mongo_uri)


def daily_chart(found: list[AttendanceEvent], start: date, end: date, tz: tzinfo) -> None:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    known = Counter(local_day(e.time, tz) for e in found if e.person_id)
    unknown = Counter(local_day(e.time, tz) for e in found if e.person_id is None)
    st.bar_chart(
        {
            "day": [d.isoformat() for d in days],
            "recognised": [known[d] for d in days],
            "unknown": [unknown[d] for d in days],
        },
        x="day",
        y=["recognised", "unknown"],
        color=["#2ea043", "#da3633"],
        y_label="events",
    )


def per_person(start: date, end: date, source: str | None, person_id: str | None, tz: tzinfo) -> None:
    rows = daily_report(context(), start, end, source, person_id, tz=tz)
    st.subheader("Per person")
    if not rows:
        st.caption("Nobody recognised in this range.")
        return
    summary: dict[str, DailyPresence] = {}
    days: Counter[str] = Counter()
    for r in rows:
        days[r.person_id] += 1
        s = summary.get(r.person_id)
        summary[r.person_id] = (
            r
            if s is None
            else replace(
                s,
                first_seen=min(s.first_seen, r.first_seen),
                last_seen=max(s.last_seen, r.last_seen),
                count=s.count + r.count,
            )
        )
    table = [
        {
            "person": safe_cell(s.display_name),  # the table's own CSV download is a spreadsheet export too
            "days": days[pid],
            "events": s.count,
            "first seen": f"{s.first_seen:%Y-%m-%d %H:%M:%S}",
            "last seen": f"{s.last_seen:%Y-%m-%d %H:%M:%S}",
        }
        for pid, s in summary.items()
    ]
    st.dataframe(sorted(table, key=lambda row: str(row["person"])), hide_index=True)
    st.subheader("Arrivals and departures")
    st.dataframe(
        [
            {
                "day": r.day.isoformat(),
                "person": safe_cell(r.display_name),
                "arrival": f"{r.first_seen:%H:%M:%S}",
                "departure": f"{r.last_seen:%H:%M:%S}",
                "events": r.count,
            }
            for r in sorted(rows, key=lambda r: (r.day, r.first_seen), reverse=True)
        ],
        hide_index=True,
    )


def event_log(found: list[AttendanceEvent], tz: tzinfo) -> None:
    """The newest events: when, where, who (or unknown), how similar."""
    st.subheader(f"Events ({len(found)})")
    st.dataframe(
        [
            {
                "time": f"{e.time.astimezone(tz):%Y-%m-%d %H:%M:%S}",
                "camera": safe_cell(e.source),
                "person": safe_cell(e.display_name) if e.person_id else "unknown",
                "similarity": round(e.similarity, 3),
            }
            for e in found[:EVENT_ROWS]
        ],
        hide_index=True,
    )


def unknown_faces(found: list[AttendanceEvent], tz: tzinfo) -> None:
    st.subheader(f"Unknown faces ({len(found)})")
    if not found:
        st.caption("No unknown face in this range.")
        return
    cols = st.columns(SNAPSHOT_COLUMNS)
    for n, e in enumerate(found[:48]):
        with cols[n % SNAPSHOT_COLUMNS]:
            img = thumbnail(e.snapshot_path, 128)
            if img is not None:
                st.image(img)
            st.caption(f"{e.time.astimezone(tz):%Y-%m-%d %H:%M:%S} · {e.source} · best {e.similarity:.2f}")


render()
