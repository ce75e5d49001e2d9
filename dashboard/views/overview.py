"""Overview: how big the galleries are, whether the queue works, which model is in use, what happened."""

from __future__ import annotations

import streamlit as st

from dashboard.jobs import worker_health
from dashboard.session import context, gallery, require_user, settings
from services.reports.exports import safe_cell
from services.reports.overview import Overview, overview


def render() -> None:
    require_user()
    st.title("Overview")
    ctx = context()
    ov = overview(ctx)
    counts(ov, ctx.settings.timezone)
    left, right = st.columns(2)
    with left:
        queue_status()
    with right:
        model_status(ov)
    galleries(ov)
    recent_activity(ov)


def counts(ov: Overview, timezone: str) -> None:
    cols = st.columns(5)
    cols[0].metric("Persons", ov.persons)
    cols[1].metric("Faces", ov.faces)
    cols[2].metric("Galleries", len(ov.galleries))
    cols[3].metric(
        "Attendance events today",
        ov.events_today,
        help=f"{ov.unknown_today} of them unknown faces. Today: the day in {timezone}.",
    )
    cols[4].metric("Duplicate pairs to review", ov.open_reviews)


def queue_status() -> None:
    st.subheader("Queue and workers")
    health = worker_health()
    if health["error"]:
        st.error(f"The task queue does not answer: {health['error']}")
    elif not health["workers"]:
        st.warning("No worker is online: enrollment, search and evaluation wait until one starts.")
    else:
        busy = sum(health["workers"].values())
        st.success(f"{len(health['workers'])} worker(s) online, {busy} busy")
    if health["queues"]:
        st.caption("Tasks waiting: " + ", ".join(f"{q} {n}" for q, n in health["queues"].items()))


def model_status(ov: Overview) -> None:
    """The configured model, and the model of the gallery in use (which the workers must match)."""
    st.subheader("Model")
    s = settings()
    current = next((g for g in ov.galleries if g.name == gallery()), None)
    st.markdown(f"Configured: **{s.model}** (runtime {s.runtime}, detector {s.detector}, device {s.device})")
    if current is None:
        st.caption(f"Gallery **{gallery()}** is empty; the first enrollment creates it with the workers' model.")
    else:
        st.markdown(f"Gallery **{current.name}**: model **{current.model}**, contract `{current.contract}`")


def galleries(ov: Overview) -> None:
    st.subheader("Galleries")
    if ov.galleries:
        st.dataframe(
            [
                {
                    "gallery": g.name,
                    "model": g.model,
                    "persons": g.persons,
                    "faces": g.faces,
                    "vectors indexed": g.indexed,
                    "1:1 threshold": round(g.verify_threshold, 3),
                    "1:N threshold": round(g.identify_threshold, 3),
                }
                for g in ov.galleries
            ],
            hide_index=True,
        )
        drift = [g.name for g in ov.galleries if g.indexed != g.faces]
        if drift:
            st.warning(
                "Face records and indexed vectors differ in " + ", ".join(drift) + ": writes are in flight, or run "
                "`python scripts/reconcile.py GALLERY` after a crash."
            )
    else:
        st.info("No gallery yet. Enroll someone on the Enroll page, or run `scripts/build_database.py` on a folder.")


def recent_activity(ov: Overview) -> None:
    st.subheader("Recent activity")
    if ov.recent:
        st.dataframe(
            [
                {
                    "time": r.time,
                    "who": safe_cell(r.actor),
                    "what": r.action,
                    "subject": safe_cell(r.subject),
                }
                for r in ov.recent
            ],
            hide_index=True,
        )
    else:
        st.caption("Nothing yet.")


render()
