"""The Celery app: Redis broker and result backend, JSON only, late acks, short redelivery.

Start a worker:  celery -A workers.app worker -Q embed,io --concurrency 1 --loglevel INFO
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from services.config import get_settings
from services.private_files import secure_process
from workers.result_backend import backend_url

EMBED_QUEUE = "embed"  # model work: one task at a time per process (prefetch 1)
IO_QUEUE = "io"  # database-only work: reconcile, duplicate review scans
# A task whose worker died is visible again after this many seconds; tasks on the embed queue
# are kept well under it (bulk work is cut into small chunks), since a task still running past it
# is delivered a second time (harmless, every task is idempotent, but wasted work).
VISIBILITY_TIMEOUT_S = 30


def create_app() -> Celery:
    settings = get_settings()
    app = Celery(
        "facereg", broker=settings.redis_url, backend=backend_url(settings.redis_url), include=["workers.tasks"]
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        worker_prefetch_multiplier=1,
        task_default_queue=EMBED_QUEUE,
        task_routes={"workers.tasks.reconcile": {"queue": IO_QUEUE}, "workers.tasks.dedup_scan": {"queue": IO_QUEUE}},
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            # kombu's sweep of unacked messages: every 5 s instead of every 100 s.
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        result_expires=7 * 24 * 3600,
        worker_hijack_root_logger=False,
    )
    return app


app = create_app()


@worker_init.connect
@worker_process_init.connect
def _private_data(**_: Any) -> None:
    """A worker makes its files private before its pool starts (the children inherit the umask 077) and
    tightens the data folder once; a pool child only checks the umask (its parent walked already)."""
    secure_process(get_settings().data_dir)
