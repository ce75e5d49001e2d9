"""One service context per worker process: the model is loaded once, not per task."""

from __future__ import annotations

import logging
import os

from celery.signals import worker_process_init

from services.config import get_settings
from services.context import ServiceContext, open_context

log = logging.getLogger(__name__)

_context: ServiceContext | None = None
_pid: int | None = None


def get_context() -> ServiceContext:
    """This process's context (a forked child never reuses its parent's connections)."""
    global _context, _pid
    if _context is None or _pid != os.getpid():
        settings = get_settings()
        ctx = open_context(settings)
        pipeline = ctx.pipeline  # the model load, logged by services.engine.build_pipeline
        log.info("worker %d ready: %s", os.getpid(), {**pipeline.describe(), "device": pipeline.device})
        _context, _pid = ctx, os.getpid()
    return _context


@worker_process_init.connect
def _load_model(**_: object) -> None:
    get_context()
