"""Each photo checked by a worker before enrollment, shown with its faces boxed and its warnings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from dashboard import jobs
from dashboard.pictures import AMBER, GREEN, RED, boxed
from dashboard.uploads import Photo

COLUMNS = 4


def check_photos(photos: Sequence[Photo], gallery: str, person_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Submit a check of each new photo and show them in a grid; returns the finished checks by photo sha."""
    done: dict[str, dict[str, Any]] = {}
    cols = st.columns(COLUMNS)
    for n, photo in enumerate(photos):
        key = f"inspect:{gallery}:{person_id}:{photo.sha}"
        if jobs.task_id(key) is None:
            jobs.submit(key, "inspect", photo.payload(), gallery, person_id)
        with cols[n % COLUMNS]:
            status = jobs.follow(key, f"Checking {photo.name}")
            if status is None:
                st.image(photo.data, caption=photo.name)
            elif not jobs.show_failure(status):
                done[photo.sha] = status.result
                show_check(photo, status.result)
    return done


def show_check(photo: Photo, check: dict[str, Any]) -> None:
    if check["error"]:
        st.error(f"{photo.name}: {check['error']['message']}")
        return
    faces = check["faces"]
    primary = check["primary"]
    ok = not check["warnings"]
    colours = [(GREEN if ok else AMBER) if i == primary else RED for i in range(len(faces))]
    labels = [f"{f['quality']['score']:.2f}" for f in faces]
    img = boxed(photo.data, [f["box"] for f in faces], labels, colours)
    st.image(img if img is not None else photo.data, caption=photo.name)
    if primary is not None:
        q = faces[primary]["quality"]
        st.caption(
            f"quality {q['score']:.2f} · {q['size_px']:.0f} px · sharpness {q['sharpness']:.0f} · "
            f"yaw {q['yaw_deg']:.0f}°"
        )
    for w in check["warnings"]:
        st.warning(w)
    if ok:
        st.success("Good photo")
