"""Settings: the gallery's thresholds (editable by an admin), the model and its contract, the rest read-only."""

from __future__ import annotations

import math

import streamlit as st

from dashboard import jobs
from dashboard.session import actor_name, context, gallery, require_admin, require_user, settings
from model.errors import ModelUnavailable
from model.model_card import list_cards
from model.zoo import ZOO, ModelSpec, get_spec
from services.config import redact
from services.errors import NotFound
from services.registry.galleries import get_gallery, set_thresholds
from services.search.verification import checked_similarity
from services.storage.records import Gallery


def render() -> None:
    require_user()
    st.title("Settings")
    try:
        g = get_gallery(context(), gallery())
    except NotFound:
        g = None
        st.info(f"Gallery **{gallery()}** does not exist yet: its first enrollment creates it with the workers' model.")
    if g is not None:
        thresholds(g)
        model_section(g)
    runtime_section()


def thresholds(g: Gallery) -> None:
    st.subheader(f"Thresholds of {g.name}")
    st.caption(
        "1:1 decides whether two photos show the same person; 1:N decides whether a searched face is anyone in "
        "the gallery at all (below it: unknown). Search gives a stranger one chance per enrolled person, so the "
        "1:N threshold is higher. Calibrate it on the Gallery evaluation page."
    )
    if g.calibration:
        c = g.calibration
        st.caption(f"Last calibration: {c.get('kind')} threshold {c.get('threshold', 0):.3f} from {c.get('source')}.")
    admin = require_admin("change thresholds")
    spec = model_spec(g.model)
    shown_verify = shown_threshold(g.verify_threshold, spec.verify_threshold if spec else 1.0, "1:1")
    shown_identify = shown_threshold(g.identify_threshold, spec.identify_threshold if spec else 1.0, "1:N")
    with st.form("thresholds"):
        cols = st.columns(2)
        verify = cols[0].number_input(
            "1:1 verification threshold", -1.0, 1.0, shown_verify, 0.005, format="%.3f", disabled=not admin
        )
        identify = cols[1].number_input(
            "1:N identification threshold", -1.0, 1.0, shown_identify, 0.005, format="%.3f", disabled=not admin
        )
        if st.form_submit_button("Save thresholds", disabled=not admin):
            set_thresholds(
                context(),
                g.name,
                verify=checked_similarity(verify, "the 1:1 threshold"),
                identify=checked_similarity(identify, "the 1:N threshold"),
                calibration={"kind": "manual", "source": actor_name()},
            )
            st.success("Saved; searches use them from now on.")


def model_spec(name: str) -> ModelSpec | None:
    """The gallery's model, or None when this process cannot find it (a custom model whose card is only in the
    workers' model dir)."""
    try:
        return get_spec(name, settings().model_dir)
    except ModelUnavailable:
        return None


def shown_threshold(stored: float, default: float, what: str) -> float:
    """A stored threshold as the bounded input can show it: clamped to [-1, 1] (a calibration may land a hair
    above 1), NaN as the model's default; a warning says so, and saving stores the shown value."""
    shown = default if math.isnan(stored) else min(1.0, max(-1.0, stored))
    if shown != stored:
        st.warning(f"The stored {what} threshold {stored!r} is not a valid threshold; {shown:.3f} is shown instead.")
    return shown


def model_section(g: Gallery) -> None:
    st.subheader("Model")
    st.markdown(f"Gallery **{g.name}** holds **{g.model}** vectors ({g.dim}-d), contract `{g.contract}`.")
    st.caption(
        "The contract is the model, its weights' hash and its preprocessing. Vectors of different contracts "
        "cannot be compared, so a gallery is searched only with its own model. Changing the model means "
        "re-embedding every stored photo of the gallery (a reindex job); searches keep working on the old "
        "vectors until the new ones are complete."
    )
    if g.reindexing_to:
        st.warning(f"Being re-indexed to {g.reindexing_to}.")
    if not require_admin("re-index a gallery"):
        return
    # Custom models: those whose card is in this process's FACEREG_MODEL_DIR (the workers need it in theirs).
    others = [m for m in [*ZOO, *list_cards(settings().model_dir)] if m != g.model]
    target = st.selectbox("Re-embed this gallery with", others, key="settings_model")
    status = jobs.follow("reindex", "Re-indexing")
    if status is not None:
        if not jobs.show_failure(status):
            st.success(f"Re-indexed: {status.result}")
        jobs.forget("reindex")
    elif not jobs.task_id("reindex") and st.button(f"Re-index {g.name} to {target}", key="settings_reindex"):
        jobs.submit("reindex", "reindex", g.name, target)
        st.rerun()


def runtime_section() -> None:
    s = settings()
    st.subheader("Worker and infrastructure settings")
    st.caption(
        "Read-only here: they come from the environment (FACEREG_*) or a .env file, and the workers read them at "
        "start. Change them there and restart the workers (`python scripts/local_services.py stop`, then `start`)."
    )
    st.dataframe(
        [
            {"setting": "FACEREG_MODEL", "value": s.model, "meaning": "embedding model of new galleries"},
            {
                "setting": "FACEREG_DETECTOR",
                "value": s.detector,
                "meaning": "face detector (mtcnn, retinaface, yunet; auto: retinaface if found)",
            },
            {"setting": "FACEREG_DEVICE", "value": s.device, "meaning": "cpu, cuda or auto"},
            {
                "setting": "FACEREG_ATTENDANCE_COOLDOWN_S",
                "value": str(s.attendance_cooldown_s),
                "meaning": "one attendance event per person and camera within this many seconds",
            },
            {
                "setting": "FACEREG_ENROLL_MIN_QUALITY",
                "value": str(s.enroll_min_quality),
                "meaning": "photos under this quality are refused at enrollment",
            },
            {"setting": "FACEREG_MONGO_URI", "value": redact(s.mongo_uri), "meaning": "identity records"},
            {"setting": "FACEREG_REDIS_URL", "value": redact(s.redis_url), "meaning": "task queue"},
            {
                "setting": "FACEREG_CHROMA_MODE",
                "value": f"server ({s.chroma_host}:{s.chroma_port})"
                if s.chroma_mode == "server"
                else f"embedded ({s.data_dir / 'chroma'})",
                "meaning": "vector index",
            },
            {
                "setting": "FACEREG_HNSW_M / _EF_CONSTRUCTION / _EF_SEARCH",
                "value": f"{s.hnsw_m} / {s.hnsw_ef_construction} / {s.hnsw_ef_search}",
                "meaning": "the index graph of new or rebuilt galleries (scripts/reindex.py GALLERY)",
            },
            {"setting": "FACEREG_DATA_DIR", "value": str(s.data_dir), "meaning": "stored photos, snapshots"},
        ],
        hide_index=True,
    )


render()
