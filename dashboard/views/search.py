"""Search & verify: every face of a photo found in the gallery (Top-K or "unknown"); 1:1 verification."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import jobs
from dashboard.pictures import GREEN, RED, boxed, thumbnail
from dashboard.session import context, gallery, require_user
from dashboard.uploads import Photo, photo_uploader
from services.registry.persons import face_summaries


def render() -> None:
    require_user()
    st.title("Search & verify")
    search_tab, verify_tab = st.tabs(["Search a photo", "Verify two photos"])
    with search_tab:
        search()
    with verify_tab:
        verify()


def search() -> None:
    g = gallery()
    st.caption(f"Every face in the photo is searched in gallery **{g}**; below the 1:N threshold it is unknown.")
    top_k = st.slider("Matches per face", 1, 10, 3, key="search_top_k")
    photos = photo_uploader("Photo to search", key="search_photo", multiple=False, camera=True)
    if not photos:
        return
    photo = photos[0]
    key = f"search:{g}:{top_k}:{photo.sha}"
    if jobs.task_id(key) is None:
        jobs.submit(key, "identify", photo.payload(), g, top_k)
    status = jobs.follow(key, "Searching")
    if status is None or jobs.show_failure(status):
        return
    show_matches(photo, status.result["faces"])


def show_matches(photo: Photo, faces: list[dict[str, Any]]) -> None:
    labels = [
        f"{f['identity']} {f['similarity']:.2f}" if f["person_id"] else f"unknown ({f['similarity']:.2f})"
        for f in faces
    ]
    img = boxed(photo.data, [f["box"] for f in faces], labels, [GREEN if f["person_id"] else RED for f in faces])
    left, right = st.columns([3, 2])
    with left:
        st.image(img if img is not None else photo.data, caption=photo.name)
    with right:
        if not faces:
            st.warning("No face found in this photo.")
        known = sum(1 for f in faces if f["person_id"])
        if faces:
            st.markdown(f"**{len(faces)} face(s)**: {known} recognised, {len(faces) - known} unknown")
        for n, f in enumerate(faces, 1):
            verdict = f"**{f['identity']}**" if f["person_id"] else "**unknown**"
            st.markdown(
                f"Face {n}: {verdict} · similarity {f['similarity']:.3f} (threshold {f['threshold']:.3f}) · "
                f"quality {f['quality']:.2f}"
            )
            match_strip(f["matches"], f["threshold"])


def match_strip(matches: list[dict[str, Any]], threshold: float) -> None:
    if not matches:
        st.caption("The gallery is empty.")
        return
    cols = st.columns(len(matches))
    summaries = face_summaries(context(), [m["person_id"] for m in matches])
    for col, m in zip(cols, matches, strict=True):
        with col:
            img = thumbnail(summaries[m["person_id"]].first_chip, 96)
            if img is not None:
                st.image(img)
            mark = "" if m["similarity"] >= threshold else " (below)"
            st.caption(f"{m['display_name']}\n\n{m['similarity']:.3f}{mark}")


def verify() -> None:
    st.caption("Are the main faces of two photos the same person? Compared at the gallery's 1:1 threshold.")
    left, right = st.columns(2)
    with left:
        a = photo_uploader("First photo", key="verify_a", multiple=False)
    with right:
        b = photo_uploader("Second photo", key="verify_b", multiple=False)
    if not (a and b):
        return
    key = f"verify:{gallery()}:{a[0].sha}:{b[0].sha}"
    if jobs.task_id(key) is None:
        jobs.submit(key, "verify", a[0].payload(), b[0].payload(), gallery())
    status = jobs.follow(key, "Comparing")
    if status is None or jobs.show_failure(status):
        return
    r = status.result
    with left:
        st.image(a[0].data)
    with right:
        st.image(b[0].data)
    verdict = "the same person" if r["is_same"] else "different people"
    box = st.success if r["is_same"] else st.warning
    box(f"Similarity **{r['similarity']:.3f}** against threshold {r['threshold']:.3f}: **{verdict}**.")
    st.caption(f"Model {r['model']} · face quality {r['quality'][0]:.2f} and {r['quality'][1]:.2f}")


render()
