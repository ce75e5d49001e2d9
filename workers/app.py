"""The Celery app: Redis broker and result backend, JSON only, late acks, short redelivery.

Queues carry the install's name (`Settings.install`: FACEREG_INSTALL_NAME, default the database name), and so
does the remote-control exchange: installs sharing a Redis never take each other's tasks nor see each other's
workers. A worker started without -Q consumes exactly its install's queues:

    celery -A workers.app worker --concurrency 1 --loglevel INFO
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu import Exchange, Queue

from services.config import Settings, get_settings
from services.storage.private_files import secure_process
from workers.result_backend import backend_url

EMBED = "embed"  # model work: one task at a time per process (prefetch 1)
IO = "io"  # database-only work: reconcile, duplicate review scans
QUEUE_KINDS = (EMBED, IO)
IO_TASKS = ("workers.tasks.reconcile", "workers.tasks.dedup_scan")
# A task whose worker died is visible again after this many seconds; tasks on the embed queue
# are kept well under it (bulk work is cut into small chunks), since a task still running past it
# is delivered a second time (harmless, every task is idempotent, but wasted work).
VISIBILITY_TIMEOUT_S = 30


def queue_name(install: str, kind: str) -> str:
    """The Redis queue of one kind of work of one install, e.g. `facereg.embed`."""
    return f"{install}.{kind}"


def install_conf(install: str) -> dict[str, Any]:
    """The settings that tie an app to one install: its queues, its routes, its control and event exchanges."""
    names = [queue_name(install, kind) for kind in QUEUE_KINDS]
    return {
        "task_queues": tuple(Queue(name, Exchange(name), routing_key=name) for name in names),
        "task_default_queue": queue_name(install, EMBED),
        "task_routes": {task: {"queue": queue_name(install, IO)} for task in IO_TASKS},
        "control_exchange": f"{install}.control",  # broadcasts (inspect, revoke) reach this install's workers only
        "event_exchange": f"{install}.events",
        "facereg_install": install,  # which install the app serves (read back by tools that switch and restore)
    }


def use_install(app: Celery, install: str) -> None:
    """Point `app` at another install's queues and workers (tests, tools). Celery caches its queue table, router,
    task sender and remote control on first use, so those are dropped too."""
    app.conf.update(install_conf(install))
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        for cached in ("queues", "default_queue", "router", "send_task_message"):
            amqp.__dict__.pop(cached, None)
        amqp.flush_routes()
    app.__dict__.pop("control", None)


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app for `settings` (default: this process's settings, FACEREG_* variables)."""
    settings = settings or get_settings()
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
        **install_conf(settings.install),
    )
    return app


app = create_app()


@worker_init.connect
@worker_process_init.connect
def _private_data(**_: Any) -> None:
    """A worker makes its files private before its pool starts (the children inherit the umask 077) and
    tightens the data folder once; a pool child only checks the umask (its parent walked already)."""
    secure_process(get_settings().data_dir)
