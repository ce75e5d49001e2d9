"""The Celery app factory: Redis broker and result backend, JSON only, late acks, short redelivery.

Queues carry the install's name (`Settings.install`: FACEREG_INSTALL_NAME, default the database name), and so
does the remote-control exchange: installs sharing a Redis never take each other's tasks nor see each other's
workers. Nothing here reads the settings at import: clients build their app from the settings they are given
(workers.client.TaskClient), the worker process from its own (workers.worker).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from services.config import Settings
from workers.messages import EMBED, QUEUE_KINDS, TASKS
from workers.result_backend import backend_url

# A task whose worker died is visible again after this many seconds; tasks on the embed queue
# are kept well under it (bulk work is cut into small chunks), since a task still running past it
# is delivered a second time (harmless, every task is idempotent, but wasted work).
VISIBILITY_TIMEOUT_S = 30


def queue_name(install: str, kind: str) -> str:
    """The Redis queue of one kind of work of one install, e.g. `facereg.embed`."""
    return f"{install}.{kind}"


def queue_names(install: str) -> list[str]:
    """Every queue of one install, the embed queue first."""
    return [queue_name(install, kind) for kind in QUEUE_KINDS]


def install_conf(install: str) -> dict[str, Any]:
    """The settings that tie an app to one install: its queues, its routes, its control and event exchanges."""
    return {
        "task_queues": tuple(Queue(name, Exchange(name), routing_key=name) for name in queue_names(install)),
        "task_default_queue": queue_name(install, EMBED),
        "task_routes": {spec.celery_name: {"queue": queue_name(install, spec.queue)} for spec in TASKS.values()},
        "control_exchange": f"{install}.control",  # broadcasts (inspect, revoke) reach this install's workers only
        "event_exchange": f"{install}.events",
    }


def create_app(settings: Settings) -> Celery:
    """A Celery app for the settings' broker and install. It does not become the process's current app: each
    client (workers.client.TaskClient) owns one, and a worker runs the module's `app`."""
    app = Celery(
        "facereg",
        broker=settings.redis_url,
        backend=backend_url(settings.redis_url),
        include=["workers.tasks"],
        set_as_current=False,
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
