"""Open-set (1:N with "unknown") evaluation and calibration on a gallery split plus unknown people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.evaluation import metrics
from model.evaluation.protocols import DatasetError
from services.context import ServiceContext
from services.evaluation.calibration import apply_calibration, identify_threshold_for_fpir
from services.evaluation.gallery import SplitRow, evaluate_gallery, rank1_at


def unknown_people_rows(root: Path, exclude: set[str], n_people: int, images_folder: str = "images") -> list[SplitRow]:
    """One image each of `n_people` identities under root/images that are not in `exclude`, spread evenly."""
    folders = sorted(p for p in (root / images_folder).iterdir() if p.is_dir() and p.name not in exclude)
    if len(folders) < n_people:
        raise DatasetError(f"only {len(folders)} people outside the gallery; asked for {n_people}")
    step = len(folders) / n_people
    chosen = [folders[int(i * step)] for i in range(n_people)]
    rows = []
    for folder in chosen:
        first = min(folder.glob("*.jpg"))
        rows.append(SplitRow(str(first.relative_to(root)), folder.name, "unknown"))
    return rows


def open_set_report(
    ctx: ServiceContext,
    root: Path,
    rows: list[SplitRow],
    unknown: list[SplitRow],
    gallery: str,
    target_fpir: float = 0.01,
    apply: bool = False,
) -> dict[str, Any]:
    """Calibrate on half of the unknown people, test on the other half and on the known probes."""
    evaluation = evaluate_gallery(ctx, root, [*rows, *unknown], gallery)
    result, unknown_best, known = evaluation.report, evaluation.unknown_best, evaluation.known_top1
    calib, test = unknown_best[0::2], unknown_best[1::2]
    calibration = identify_threshold_for_fpir(calib, target_fpir)
    thr = calibration["threshold"]
    n_known = result["n_probes"]
    whole = identify_threshold_for_fpir(unknown_best, target_fpir)
    report = {
        "gallery": gallery,
        "contract": result["contract"],
        "n_identities": result["n_identities"],
        "n_known_probes": n_known,
        "n_unknown_probes": len(unknown_best),
        "closed_set_top1": result["top1"],
        "target_fpir": target_fpir,
        "threshold": thr,
        "calibration_fpir": metrics.false_accept_rate(calib, thr),
        "held_out_fpir": metrics.false_accept_rate(test, thr),
        "rank1_at_threshold": rank1_at(known, n_known, thr),
        "threshold_all_unknowns": whole["threshold"],
        "rank1_at_threshold_all_unknowns": rank1_at(known, n_known, whole["threshold"]),
        "fpir_at_verify_threshold": metrics.false_accept_rate(unknown_best, ctx.pipeline.spec.verify_threshold),
        "verify_threshold": ctx.pipeline.spec.verify_threshold,
    }
    if apply:
        apply_calibration(ctx, gallery, calibration, f"open-set evaluation job {result['job_id']}")
        report["applied"] = True
    return report
