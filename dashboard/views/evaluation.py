"""Gallery evaluation: Top-1/3/5 of a split (a folder, an uploaded zip, or a holdout of this gallery),
the ROC, the failures side by side, and a 1:N threshold calibrated for a target FAR."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import streamlit as st

from dashboard import jobs
from dashboard.pictures import thumbnail
from dashboard.session import actor_name, context, gallery, require_admin, require_user, settings
from dashboard.uploads import MAX_UPLOAD_MB
from model.errors import FaceregError
from model.evaluation import metrics
from model.evaluation.plots import roc_figure
from services.evaluation.calibration import apply_calibration, identify_threshold_for_fpir
from services.evaluation.sources import extract_zip
from services.storage.jobs import recent_jobs

SOURCES = {"folder": "A folder on the server", "zip": "An uploaded zip", "gallery": "This gallery, with a holdout"}
TARGET_FARS = [0.001, 0.005, 0.01, 0.05, 0.1]


def render() -> None:
    require_user()
    st.title("Gallery evaluation")
    st.caption(
        "Each person's first photos are enrolled into an evaluation gallery, the rest are searched in it: "
        "Top-K is how often the right person is among the first K answers."
    )
    if require_admin("run evaluations"):
        with st.expander("Run an evaluation", expanded=not jobs.task_id("evaluation")):
            run_form()
    status = jobs.follow("evaluation", "Evaluating")
    if status is not None and jobs.show_failure(status):
        return
    past = [j for j in recent_jobs(context(), "gallery_evaluation", 20) if j.state == "done" and j.result]
    if not past:
        st.info("No finished evaluation yet.")
        return
    labels = {
        f"{j.created_at:%Y-%m-%d %H:%M} · {(j.result or {})['gallery']} · {j.params.get('root', '')}": j for j in past
    }
    chosen = labels[st.selectbox("Results of", list(labels), key="evaluation_pick")]
    show_result(chosen.result or {}, chosen.params.get("root", "/"))


def run_form() -> None:
    kind = st.radio("Photos from", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="evaluation_kind")
    cols = st.columns(3)
    per_person = cols[0].number_input("Enroll photos per person", 1, 10, 1, key="evaluation_per_person")
    max_persons = cols[1].number_input("Persons (0 = all)", 0, 100_000, 0, key="evaluation_max_persons")
    default_name = f"eval-{gallery()}" if kind == "gallery" else "eval"
    target = cols[2].text_input(
        "Evaluation gallery",
        default_name,
        key=f"evaluation_gallery:{kind}",
        help="Enrolled here, never into the live gallery. Re-running reuses what is there.",
    )
    source: dict[str, Any] | None = None
    if kind == "folder":
        datasets = settings().datasets
        default = datasets / "lfw" / "images" if datasets else ""
        root = st.text_input("Folder of <person>/<images> on the server", str(default), key="evaluation_root")
        source = {"kind": "folder", "root": root}
    elif kind == "zip":
        upload = st.file_uploader(
            "Zip of <person>/<images>", type=["zip"], key="evaluation_zip", max_upload_size=MAX_UPLOAD_MB
        )
        source = {"kind": "zip", "upload": upload} if upload else None
    else:
        source = {"kind": "gallery", "gallery": gallery()}
    if st.button("Run", type="primary", disabled=source is None, key="evaluation_run") and source is not None:
        start(source, int(per_person), int(max_persons), target.strip())


def start(source: dict[str, Any], per_person: int, max_persons: int, target: str) -> None:
    if source["kind"] == "zip":
        folder = settings().data_dir / "uploads" / uuid.uuid4().hex
        archive = folder.with_suffix(".zip")
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(source["upload"].getvalue())
        try:
            root = extract_zip(archive, folder)
        except FaceregError as exc:
            st.error(str(exc))
            return
        finally:
            archive.unlink(missing_ok=True)
        source = {"kind": "folder", "root": str(root)}
    elif source["kind"] == "folder" and not Path(source["root"]).is_dir():
        st.error(f"{source['root']} is not a folder on this server.")
        return
    source = {**source, "enroll_per_person": per_person, "max_persons": max_persons}
    if jobs.submit("evaluation", "evaluate", source, target or "eval"):
        st.rerun()


def show_result(r: dict[str, Any], root: str) -> None:
    cols = st.columns(4)
    for col, k in zip(cols, (1, 3, 5), strict=False):
        col.metric(f"Top-{k}", f"{r[f'top{k}']:.2%}")
    cols[3].metric("Probes", r["n_probes"], help=f"{r['n_identities']} persons enrolled, {r['n_failed']} probes failed")
    left, right = st.columns(2)
    with left:
        st.bar_chart({"accuracy": {f"Top-{k}": r[f"top{k}"] for k in (1, 3, 5)}}, y_label="accuracy")
    scores = r.get("scores") or {}
    with right:
        roc_and_calibration(scores, r["gallery"])
    failures_table(r, root)


def roc_and_calibration(scores: dict[str, list[float]], evaluated: str) -> None:
    genuine, impostor = scores.get("genuine", []), scores.get("impostor", [])
    if not genuine or not impostor:
        st.caption("Too few scores for a ROC.")
        return
    values = [*genuine, *impostor]
    labels = [1] * len(genuine) + [0] * len(impostor)
    fig = roc_figure(
        metrics.roc_curve(values, labels), "1:N: own person vs best other person", metrics.roc_auc(values, labels)
    )
    st.pyplot(fig)
    plt.close(fig)
    feasible = [far for far in TARGET_FARS if far * len(impostor) >= 1]
    if not feasible:
        st.caption(
            f"A threshold for a {TARGET_FARS[-1]:.0%} false accept rate needs at least "
            f"{int(1 / TARGET_FARS[-1])} probes; evaluate more people to calibrate."
        )
        return
    target = st.select_slider(
        "Target false accept rate",
        feasible,
        0.01 if 0.01 in feasible else feasible[0],
        key="evaluation_far",
        format_func=lambda v: f"{v:.1%}",
    )
    calibration = identify_threshold_for_fpir(impostor, float(target))
    tar = sum(s >= calibration["threshold"] for s in genuine) / len(genuine)
    st.markdown(
        f"Threshold **{calibration['threshold']:.3f}** accepts {calibration['fpir']:.2%} of strangers "
        f"and {tar:.2%} of enrolled people (from {len(impostor)} best-other-person scores of {evaluated})."
    )
    g = gallery()
    if require_admin("change thresholds") and st.button(f"Apply as the 1:N threshold of {g}", key="evaluation_apply"):
        apply_calibration(context(), g, calibration, f"dashboard evaluation of {evaluated} by {actor_name()}")
        st.success(f"Gallery {g}: 1:N threshold set to {calibration['threshold']:.3f}.")


def failures_table(r: dict[str, Any], root: str) -> None:
    failures = r.get("failures") or []
    st.subheader(f"Top-1 failures ({len(failures)})")
    if not failures:
        st.caption("None.")
        return
    examples = r.get("examples") or {}
    base = Path(root)
    for f in failures[:30]:
        cols = st.columns([1, 1, 1, 3])
        for col, path, caption in (
            (cols[0], base / f["probe"], "probe"),
            (cols[1], base / examples[f["expected"]] if f["expected"] in examples else None, "expected"),
            (cols[2], base / examples[f["predicted"]] if f.get("predicted") in examples else None, "predicted"),
        ):
            img = thumbnail(path, 112) if path else None
            if img is not None:
                col.image(img, caption=caption)
            else:
                col.caption(f"{caption}: no image")
        sim = f"{f['similarity']:.3f}" if f["similarity"] is not None else "-"
        cols[3].markdown(
            f"**{f['expected']}** taken for **{f['predicted'] or 'nobody'}** (similarity {sim})\n\n`{f['probe']}`"
        )
    if len(failures) > 30:
        st.caption(f"... and {len(failures) - 30} more.")


render()
