"""Building the face pipeline from the settings: the one place that turns names into models."""

from __future__ import annotations

import logging
import os

from model.detection import DetectorOptions, create_detector
from model.embedders import create_embedder, resolve_device
from model.pipeline import FacePipeline, PipelineOptions
from services.config import Settings

log = logging.getLogger(__name__)


def configure_threads(settings: Settings) -> int:
    """Pin torch's thread count: two busy processes on two cores each wanting 2 threads is 10x slower."""
    import torch  # here, not at the top: the dashboard reads settings and thresholds without loading torch

    threads = settings.torch_threads or min(4, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def pipeline_options(settings: Settings) -> PipelineOptions:
    return PipelineOptions(
        detector=DetectorOptions(
            min_face_size=settings.min_face_size,
            score_threshold=settings.detection_score,
            upscale_below=settings.detect_upscale_below,
        ),
        no_face=settings.no_face,
        limits=settings.image_limits,
    )


def build_pipeline(settings: Settings, **overrides: object) -> FacePipeline:
    """The detector and embedder named by `settings` (with CLI overrides applied), ready to use."""
    if overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    configure_threads(settings)
    device = resolve_device(settings.device)
    embedder = create_embedder(
        settings.model, settings.runtime, settings.model_dir, device, settings.flip_tta, settings.batch_size
    )
    detector = create_detector(settings.detector, settings.model_dir, device)
    pipeline = FacePipeline(detector, embedder, pipeline_options(settings))
    log.info(
        "face pipeline: model=%(model)s runtime=%(runtime)s device=%(device)s detector=%(detector)s "
        "contract=%(contract)s",
        {**pipeline.describe(), "device": pipeline.device},
    )
    return pipeline


def verify_threshold(settings: Settings, pipeline: FacePipeline) -> float:
    """The 1:1 threshold: the setting when given, else the model's calibrated default."""
    if settings.verify_threshold is not None:
        return settings.verify_threshold
    return pipeline.spec.verify_threshold


__all__ = ["build_pipeline", "configure_threads", "pipeline_options", "verify_threshold"]
