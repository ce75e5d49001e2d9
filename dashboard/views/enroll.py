"""Enroll: a person's name, consent and photos; each photo checked first, then enrolled by a worker."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import jobs
from dashboard.photo_checks import check_photos
from dashboard.session import actor_name, gallery, require_admin, require_user, settings
from dashboard.uploads import photo_uploader

FIELDS = ("enroll_name", "enroll_external_id", "enroll_consent", "enroll_note", "enroll_photos", "enroll_group")


def render() -> None:
    require_user()
    st.title("Enroll a person")
    g = gallery()
    st.caption(f"Into gallery **{g}**. Use 2-5 clear, frontal photos taken on different days if you can.")
    if not require_admin("enroll people"):
        return
    status = jobs.follow("enroll", "Enrolling")
    if status is not None:
        show_result(status)
        return
    if jobs.task_id("enroll"):
        return  # running: the live progress line is shown above
    name = st.text_input("Name", key="enroll_name", max_chars=200)
    external_id = st.text_input(
        "External id (optional)",
        key="enroll_external_id",
        max_chars=120,
        help="An employee or student number. Enrolling the same id again adds photos to that person.",
    )
    consent = st.checkbox("The person has given consent to be enrolled", key="enroll_consent")
    note = st.text_input("Consent note (optional)", key="enroll_note", placeholder="form 12, signed 2026-11-23")
    photos = photo_uploader("Photos", key="enroll_photos", camera=True)
    group = st.checkbox(
        "A photo may show other people: use its main face",
        key="enroll_group",
        help="Otherwise photos with several faces are refused.",
    )
    checks = check_photos(photos, g) if photos else {}
    missing = [
        what for what, ok in (("a name", name.strip()), ("consent", consent), ("at least one photo", photos)) if not ok
    ]
    if missing:
        st.caption("Needed before enrolling: " + ", ".join(missing) + ".")
    if len(checks) < len(photos):
        st.caption("Photos are being checked ...")
    if st.button("Enroll", type="primary", disabled=bool(missing), key="enroll_submit"):
        person: dict[str, Any] = {
            "display_name": name.strip(),
            "external_id": external_id.strip() or None,
            "consent": {"given": True, "note": note.strip()},
        }
        options = {"multi_face": "largest" if group else "error", "min_quality": settings().enroll_min_quality}
        if jobs.submit("enroll", "enroll", person, [p.payload() for p in photos], g, options, actor_name()):
            st.rerun()


def show_result(status: jobs.TaskStatus) -> None:
    if not jobs.show_failure(status):
        r = status.result
        verb = "Enrolled new person" if r["person_created"] else "Added photos to"
        if r["enrolled"]:
            st.success(f"{verb} **{r['display_name']}**: {r['enrolled']} photo(s) enrolled.")
        else:
            st.warning(f"No new photo enrolled for **{r['display_name']}**.")
        st.dataframe(
            [
                {
                    "photo": i["name"],
                    "result": i["status"].replace("_", " "),
                    "quality": (i["quality"] or {}).get("score"),
                    "reason / warnings": "; ".join(filter(None, [i["reason"], *i["warnings"]])),
                }
                for i in r["images"]
            ],
            hide_index=True,
        )
        if r["person_id"] and st.button("Open this person", icon=":material/person:", key="enroll_open_person"):
            st.session_state["people_selected"] = r["person_id"]
            st.switch_page("views/people.py")
    if st.button("Enroll another person", key="enroll_again"):
        jobs.forget("enroll")
        for key in FIELDS:
            st.session_state.pop(key, None)
        st.rerun()


render()
