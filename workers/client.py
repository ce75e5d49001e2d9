"""Submitting work to the queue and following it: used by the dashboard and the scripts."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import kombu.pools
from celery.result import AsyncResult
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.config import Settings
from services.errors import ServiceError
from workers import tasks  # noqa: F401 - importing registers the tasks with the app
from workers.app import app, use_install
from workers.result_backend import backend_url

BROKER_ERRORS = ("ConnectionError:", "OperationalError:", "TimeoutError:")


class QueueUnavailable(ServiceError):
    """The broker (Redis) cannot be reached: nothing was submitted."""


@dataclass(frozen=True, slots=True)
class TaskStatus:
    id: str
    state: str  # PENDING | STARTED | PROGRESS | SUCCESS | FAILURE | RETRY | REVOKED
    result: Any
    error: str | None

    @property
    def broker_lost(self) -> bool:
        """Failed because Redis went away around the task, not because of its work (its message may be
        gone with it): resubmitting is safe, every task being idempotent."""
        return self.state == "FAILURE" and (self.error or "").startswith(BROKER_ERRORS)

    @property
    def done(self) -> bool:
        return self.state in ("SUCCESS", "FAILURE", "REVOKED")


def use_broker(redis_url: str) -> None:
    """Point this process's client at another Redis (tests, tools). Celery caches its connection and
    producer pools and the result backend on first use, so those are dropped too; kombu keeps its pools
    per broker URL, so they are all closed and forgotten (coming back to a URL must not find a closed one)."""
    app.conf.broker_url = redis_url
    app.conf.result_backend = backend_url(redis_url)
    kombu.pools.reset()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


def use_settings(settings: Settings) -> None:
    """Point this process's client at the settings' broker and install: tasks go to that install's queues,
    `workers_online` sees that install's workers only."""
    if app.conf.broker_url != settings.redis_url:
        use_broker(settings.redis_url)
    use_install(app, settings.install)


def submit(task_name: str, *args: Any, **kwargs: Any) -> str:
    """Send a task; a broker outage is a clear error, never a half-submitted task."""
    task = app.tasks[f"workers.tasks.{task_name}"]
    try:
        return str(
            task.apply_async(
                args=args,
                kwargs=kwargs,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.5, "interval_step": 1.0},
            ).id
        )
    except (OperationalError, RedisConnectionError) as exc:
        raise QueueUnavailable(
            f"the task queue at {app.conf.broker_url} does not answer ({exc}); start Redis "
            "(`python scripts/local_services.py start`) and try again"
        ) from exc


def status(task_id: str) -> TaskStatus:
    """The task's state; UNKNOWN (not done) while the result backend cannot be reached."""
    res = AsyncResult(task_id, app=app)
    try:
        state = res.state
    except (RedisConnectionError, OperationalError) as exc:
        return TaskStatus(task_id, "UNKNOWN", None, f"result backend unreachable: {exc}")
    if state == "FAILURE":
        return TaskStatus(task_id, state, None, f"{type(res.result).__name__}: {res.result}")
    return TaskStatus(task_id, state, res.result if state in ("SUCCESS", "PROGRESS") else None, None)


def finished(pending: set[str], deadline: float, poll: float = 0.5) -> Iterator[TaskStatus]:
    """Each task of `pending` as soon as it is done (and removed from the set), until the set is empty
    or the deadline (time.monotonic()) passes; the caller may add tasks to the set meanwhile."""
    while pending and time.monotonic() < deadline:
        for tid in list(pending):
            st = status(tid)
            if st.done:
                pending.discard(tid)
                yield st
        if pending:
            time.sleep(poll)


def wait(task_ids: Sequence[str], timeout: float = 600.0, poll: float = 0.5) -> dict[str, TaskStatus]:
    """Poll until every task is done or the timeout passes; returns the last status of each."""
    pending = set(task_ids)
    last = {st.id: st for st in finished(pending, time.monotonic() + timeout, poll)}
    return {tid: last[tid] if tid in last else status(tid) for tid in task_ids}


def cancel(task_id: str) -> None:
    """Revoke a queued task (a running one finishes its current step; tasks are idempotent)."""
    app.control.revoke(task_id)


def workers_online(timeout: float = 1.0) -> dict[str, Any]:
    """This install's worker names -> their active task count (empty when none answers)."""
    replies = app.control.inspect(timeout=timeout).active() or {}
    return {name: len(active) for name, active in replies.items()}


def queue_lengths() -> dict[str, int]:
    """Tasks waiting on each of this install's queues."""
    with app.connection_for_read() as conn:
        client = conn.default_channel.client
        return {q.name: int(client.llen(q.name)) for q in app.conf.task_queues}
