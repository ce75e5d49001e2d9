"""Attendance: who was seen when, per day and per person; unknown faces with their snapshots; CSV export."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

import streamlit as st

from dashboard.pictures import thumbnail
from dashboard.session import context
from services.attendance import AttendanceEvent, DailyPresence, daily_report, events, report_csv, sources
from services.persons import search_persons
from services.records import utcnow

SNAPSHOT_COLUMNS = 6


def render() -> None:
    st.title("Attendance")
    ctx = context()
    today = utcnow().date()
    cols = st.columns(3)
    picked = cols[0].date_input(
        "Days (UTC)", (today - timedelta(days=6), today), max_value=today, key="attendance_days"
    )
    start, end = (picked[0], picked[-1]) if isinstance(picked, tuple) and picked else (today, today)
    source = cols[1].selectbox("Camera / source", ["all", *sources(ctx)], key="attendance_source")
    person_names = person_choices()
    person = cols[2].selectbox("Person", ["everyone", *person_names], key="attendance_person")
    src = None if source == "all" else source
    pid = person_names.get(person)
    found = events(ctx, start, end, person_id=pid, source=src)
    st.caption(f"{len(found)} event(s) from {start} to {end}.")
    daily_chart(found, start, end)
    per_person(start, end, src, pid)
    unknown_faces([e for e in found if e.person_id is None and e.snapshot_path])
    st.download_button(
        "Export CSV",
        report_csv(ctx, start, end, src, pid),
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


def daily_chart(found: list[AttendanceEvent], start: date, end: date) -> None:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    known = Counter(e.time.date() for e in found if e.person_id)
    unknown = Counter(e.time.date() for e in found if e.person_id is None)
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


def per_person(start: date, end: date, source: str | None, person_id: str | None) -> None:
    rows = daily_report(context(), start, end, source, person_id)
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
            "person": s.display_name,
            "days": days[pid],
            "events": s.count,
            "first seen": s.first_seen,
            "last seen": s.last_seen,
        }
        for pid, s in summary.items()
    ]
    st.dataframe(sorted(table, key=lambda row: str(row["person"])), hide_index=True)


def unknown_faces(found: list[AttendanceEvent]) -> None:
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
            st.caption(f"{e.time:%Y-%m-%d %H:%M:%S} · {e.source} · best {e.similarity:.2f}")


render()
