"""Duplicates: pairs of different persons whose faces match (merge / keep separate / remove a face),
and groups of near-identical photos (keep the best)."""

from __future__ import annotations

import streamlit as st

from dashboard import jobs
from dashboard.pictures import thumbnail
from dashboard.session import actor_name, context, gallery, is_admin, require_admin, require_user
from services.dedup.duplicates import (
    DuplicateGroup,
    OpenReview,
    decide_review,
    open_reviews,
    resolve_gallery_duplicates,
)
from services.errors import ServiceError
from services.storage.records import Face


def render() -> None:
    require_user()
    st.title("Duplicates")
    pairs_tab, photos_tab = st.tabs(["Same person enrolled twice?", "Near-identical photos"])
    with pairs_tab:
        identity_pairs()
    with photos_tab:
        identical_photos()


def identity_pairs() -> None:
    g = gallery()
    ctx = context()
    admin = is_admin()
    if admin:
        scan_controls(g)
    else:
        st.caption("Signed in as a viewer: you can look at the candidates; an administrator decides.")
    reviews = open_reviews(ctx, g)
    st.subheader(f"Open candidates: {len(reviews)}")
    if not reviews:
        st.caption("Nothing to review. A scan adds every pair of persons whose faces match above the threshold.")
        return
    for review in reviews[:20]:
        review_card(review, admin)
    if len(reviews) > 20:
        st.caption(f"... and {len(reviews) - 20} more after these.")


def scan_controls(g: str) -> None:
    status = jobs.follow("dedup_scan", "Scanning")
    if status is not None:
        if not jobs.show_failure(status):
            st.success(f"Scan finished: {status.result['new_candidates']} new candidate pair(s).")
        jobs.forget("dedup_scan")
    elif not jobs.task_id("dedup_scan") and st.button("Scan the gallery", type="primary", key="dedup_scan_run"):
        jobs.submit("dedup_scan", "dedup_scan", g)
        st.rerun()


def review_card(item: OpenReview, admin: bool) -> None:
    ctx, review = context(), item.review
    faces = {d["_id"]: Face.from_doc(d) for d in ctx.db.faces.find({"_id": {"$in": review.face_ids}})}
    with st.container(border=True):
        cols = st.columns([1, 1, 2])
        for col, pid, fid, name in zip(cols[:2], review.person_ids, review.face_ids, item.names, strict=True):
            face = faces.get(fid)
            img = thumbnail(face.chip_path, 128) if face else None
            if img is not None:
                col.image(img)
            col.markdown(f"**{name}**")
            col.caption(f"person `{pid[:8]}`")
        with cols[2]:
            st.markdown(f"Similarity **{review.similarity:.3f}**")
            if admin:
                decision_buttons(item)


def decision_buttons(item: OpenReview) -> None:
    rid = item.review.id
    a, b = item.review.person_ids
    name_a, name_b = item.names
    choice = st.radio(
        "Decision",
        ["keep_separate", "merge_a", "merge_b", "remove_a", "remove_b"],
        format_func={
            "keep_separate": "Different people: keep separate",
            "merge_a": f"Same person: merge into {name_a}",
            "merge_b": f"Same person: merge into {name_b}",
            "remove_a": f"Remove the face of {name_a} (wrong photo)",
            "remove_b": f"Remove the face of {name_b} (wrong photo)",
        }.get,
        key=f"decision:{rid}",
    )
    if st.button("Apply", key=f"apply:{rid}", type="primary"):
        actor = actor_name()
        try:
            if choice == "keep_separate":
                decide_review(context(), rid, "keep_separate", actor)
            elif choice in ("merge_a", "merge_b"):
                decide_review(context(), rid, "merge", actor, keep_person=a if choice == "merge_a" else b)
            else:
                face = item.review.face_ids[0 if choice == "remove_a" else 1]
                decide_review(context(), rid, "remove_face", actor, face_id=face)
        except ServiceError as exc:
            st.error(str(exc))
            return
        st.toast("Decision saved")
        st.rerun()


def identical_photos() -> None:
    g = gallery()
    st.caption("The same photo enrolled more than once (resized, recompressed or mirrored copies).")
    if not require_admin("look for and remove copies"):
        return
    removed = st.session_state.pop("image_dups_removed", None)
    if removed is not None:
        st.success(f"{removed} copy(ies) removed from the gallery; their originals are in the quarantine folder.")
    status = jobs.follow("image_duplicates", "Looking for copies")
    if status is None:
        if not jobs.task_id("image_duplicates") and st.button("Find near-identical photos", key="image_dups_run"):
            jobs.submit("image_duplicates", "image_duplicates", g)
            st.rerun()
        return
    if jobs.show_failure(status):
        jobs.forget("image_duplicates")
        return
    groups = [DuplicateGroup(**d) for d in status.result["groups"]]
    st.markdown(f"**{len(groups)}** group(s) of copies in {status.result['gallery']}.")
    ctx = context()
    for n, group in enumerate(groups[:20], 1):
        faces = {d["_id"]: Face.from_doc(d) for d in ctx.db.faces.find({"_id": {"$in": group.keys}})}
        cols = st.columns(max(len(group.keys), 4))
        for col, key in zip(cols, group.keys, strict=False):
            face = faces.get(key)
            img = thumbnail(face.image_path, 128) if face else None
            if img is not None:
                col.image(img, caption="best, kept" if key == group.best else "copy")
        st.caption(f"Group {n}: similarity ≥ {group.min_similarity:.2f}, hash distance ≤ {group.max_hash_distance}")
    if groups and st.button("Keep the best photo of each group", type="primary", key="image_dups_keep"):
        removed = resolve_gallery_duplicates(ctx, status.result["gallery"], groups, actor_name())
        jobs.forget("image_duplicates")
        st.session_state["image_dups_removed"] = removed
        st.rerun()
    if st.button("Scan again", key="image_dups_again"):
        jobs.forget("image_duplicates")
        st.rerun()


render()
