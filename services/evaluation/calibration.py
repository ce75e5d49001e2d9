"""Threshold calibration from evaluation data, stored on the gallery.

The 1:1 and the 1:N thresholds are separate: a 1:1 threshold at 1 % FAR accepts a stranger
against *one* claimed identity 1 % of the time, but a search against N people gives the
stranger N chances, so the open-set threshold must come from unknown probes searched against
the whole gallery.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from model.evaluation import metrics
from services.context import ServiceContext
from services.registry.galleries import set_thresholds
from services.storage.records import Gallery, utcnow


def verify_threshold_for_far(scores: npt.ArrayLike, labels: npt.ArrayLike, target_far: float) -> dict[str, Any]:
    tar, thr = metrics.tar_at_far(scores, labels, target_far)
    return {"kind": "verify", "target_far": target_far, "threshold": thr, "tar": tar}


def identify_threshold_for_fpir(unknown_best: npt.ArrayLike, target_fpir: float) -> dict[str, Any]:
    thr = metrics.open_set_threshold(unknown_best, target_fpir)
    return {
        "kind": "identify",
        "target_fpir": target_fpir,
        "threshold": thr,
        "fpir": metrics.false_accept_rate(unknown_best, thr),
    }


def apply_calibration(ctx: ServiceContext, gallery: str, calibration: dict[str, Any], source: str) -> Gallery:
    """Store a calibrated threshold on the gallery, with where it came from."""
    record = {**calibration, "source": source, "applied_at": utcnow()}
    if calibration["kind"] == "verify":
        return set_thresholds(ctx, gallery, verify=calibration["threshold"], calibration=record)
    return set_thresholds(ctx, gallery, identify=calibration["threshold"], calibration=record)
