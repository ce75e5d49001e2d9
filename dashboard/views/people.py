"""People: a searchable, paginated list with thumbnails; one person's faces, attendance and edits."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import jobs
from dashboard.photo_checks import check_photos
from dashboard.pictures import data_uri, thumbnail
from dashboard.session import actor_name, context, gallery, is_admin, require_admin, require_user
from dashboard.uploads import photo_uploader
from services.attendance.events import daily_report, site_today
from services.errors import ServiceError
from services.registry.erasure import erase_face, erase_person
from services.registry.persons import face_summaries, faces_of, get_person, rename_person, search_persons
from services.reports.exports import safe_cell
from services.storage.records import Person

PAGE_SIZE = 20
FACE_COLUMNS = 6


def render() -> None:
    require_user()
    st.title("People")
    selected = st.session_state.get("people_selected")
    if selected:
        person_page(str(selected))
    else:
        people_list()


def people_list() -> None:
    ctx = context()
    erased = st.session_state.pop("people_erased", None)
    if erased:
        st.success(
            f"Person erased: {erased['faces_deleted']} face(s) and {erased['snapshots_deleted']} snapshot(s) deleted, "
            f"{erased['attendance_rows']} attendance row(s) {erased['attendance_mode']}d."
        )
    text = st.text_input("Search by name or external id", key="people_search")
    page = int(st.session_state.get("people_page", 0))
    persons, total = search_persons(ctx, text, skip=page * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages - 1)
    st.caption(f"{total} person(s)" + (f", page {page + 1} of {pages}" if pages > 1 else ""))
    summaries = face_summaries(ctx, [p.id for p in persons])
    rows = [
        {
            "photo": data_uri(summaries[p.id].first_chip),
            "name": safe_cell(p.display_name),  # the table's own CSV download must not carry formulas
            "external id": safe_cell(p.external_id or ""),
            "faces": summaries[p.id].faces,
            "galleries": ", ".join(summaries[p.id].galleries),
            "enrolled": p.created_at.strftime("%Y-%m-%d"),
        }
        for p in persons
    ]
    event = st.dataframe(
        rows,
        hide_index=True,
        column_config={"photo": st.column_config.ImageColumn("photo", width="small")},
        on_select="rerun",
        selection_mode="single-row",
        key="people_table",
    )
    chosen = event.selection.rows if hasattr(event, "selection") else []
    if chosen:
        open_person(persons[chosen[0]].id)
    prev, _, nxt = st.columns([1, 6, 1])
    if prev.button("Previous", disabled=page == 0, key="people_prev"):
        st.session_state["people_page"] = page - 1
        st.rerun()
    if nxt.button("Next", disabled=page >= pages - 1, key="people_next"):
        st.session_state["people_page"] = page + 1
        st.rerun()
    names = {p.display_name + (f" ({p.external_id})" if p.external_id else ""): p.id for p in persons}
    if names:
        pick = st.selectbox("Open a person", ["", *names], key="people_pick")
        if pick:
            open_person(names[pick])


def open_person(person_id: str) -> None:
    st.session_state["people_selected"] = person_id
    st.session_state.pop("people_pick", None)
    st.rerun()


def person_page(person_id: str) -> None:
    ctx = context()
    if st.button("Back to the list", icon=":material/arrow_back:", key="people_back"):
        del st.session_state["people_selected"]
        st.rerun()
    try:
        person = get_person(ctx, person_id)
    except ServiceError as exc:
        st.error(str(exc))
        return
    st.header(person.display_name)
    consent = "given" if person.consent and person.consent.given else "not recorded"
    if person.consent and person.consent.note:
        consent += f" ({person.consent.note})"
    st.caption(
        f"External id: {person.external_id or '-'} · enrolled {person.created_at:%Y-%m-%d %H:%M} UTC · "
        f"consent {consent} · id `{person.id}`"
    )
    faces_section(person)
    attendance_section(person)
    edit_section(person)


def faces_section(person: Person) -> None:
    ctx = context()
    faces = faces_of(ctx, person.id)
    st.subheader(f"Faces ({len(faces)})")
    if not faces:
        st.info("No face enrolled.")
    cols = st.columns(FACE_COLUMNS)
    admin = is_admin()
    for n, face in enumerate(faces):
        with cols[n % FACE_COLUMNS]:
            img = thumbnail(face.chip_path)
            if img is not None:
                st.image(img)
            st.caption(
                f"{face.gallery} · quality {face.quality['score']:.2f}\n\n"
                f"{face.source_name or 'photo'} · {face.created_at:%Y-%m-%d}"
            )
            if admin and st.button("Remove", key=f"remove_face:{face.id}", icon=":material/delete:"):
                erase_face(ctx, face.id, actor=actor_name())
                st.toast("Face removed")
                st.rerun()


def attendance_section(person: Person) -> None:
    ctx = context()
    today = site_today(ctx)
    rows = daily_report(ctx, today - timedelta(days=29), today, person_id=person.id)
    st.subheader("Attendance, last 30 days")
    if not rows:
        st.caption("Not seen in the last 30 days.")
        return
    st.caption(
        f"Seen on {len(rows)} day(s); first {min(r.first_seen for r in rows):%Y-%m-%d %H:%M}, "
        f"last {max(r.last_seen for r in rows):%Y-%m-%d %H:%M} ({ctx.settings.timezone})"
    )
    st.dataframe(
        [
            {"day": r.day, "first seen": f"{r.first_seen:%H:%M}", "last seen": f"{r.last_seen:%H:%M}", "count": r.count}
            for r in rows
        ],
        hide_index=True,
    )


def edit_section(person: Person) -> None:
    st.subheader("Edit")
    if not require_admin("add photos, rename or delete people"):
        return
    actor = actor_name()
    ctx = context()
    with st.expander("Add photos"):
        add_photos(person, actor)
    with st.expander("Rename"), st.form("rename"):
        name = st.text_input("Name", value=person.display_name, max_chars=200)
        if st.form_submit_button("Rename"):
            try:
                rename_person(ctx, person.id, name, actor)
            except ServiceError as exc:
                st.error(str(exc))
            else:
                st.rerun()
    with st.expander("Delete this person"):
        st.warning(
            "Erasure removes every face, stored photo and vector of this person, and anonymises their "
            "attendance. It cannot be undone."
        )
        confirm = st.text_input(f"Type **{person.display_name}** to confirm", key=f"erase_confirm:{person.id}")
        if st.button(
            "Delete permanently", type="primary", disabled=confirm != person.display_name, key=f"erase:{person.id}"
        ):
            report = erase_person(ctx, person.id, actor)
            del st.session_state["people_selected"]
            st.session_state["people_erased"] = report.to_dict()
            st.rerun()


def add_photos(person: Person, actor: str) -> None:
    key = f"add_photos:{person.id}"
    status = jobs.follow(key, "Adding photos")
    if status is not None:
        if not jobs.show_failure(status):
            r = status.result
            st.success(
                f"{r['enrolled']} photo(s) added, {r['already_enrolled']} already there, {r['rejected']} refused."
            )
            for i in r["images"]:
                if i["status"] == "rejected":
                    st.caption(f"{i['name']}: {i['reason']}")
        if st.button("Add more", key=f"{key}:again"):
            jobs.forget(key)
            st.rerun()
        return
    if jobs.task_id(key):
        return
    photos = photo_uploader("Photos", key=f"{key}:files", camera=True)
    if photos:
        check_photos(photos, gallery(), person.id)
    if st.button("Add", type="primary", disabled=not photos, key=f"{key}:submit") and jobs.submit(
        key,
        "enroll",
        {"display_name": person.display_name, "person_id": person.id},
        [p.payload() for p in photos],
        gallery(),
        None,
        actor,
    ):
        st.rerun()


render()
