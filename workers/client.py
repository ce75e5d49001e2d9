"""Submitting work to the queue and following it: used by the dashboard, the scripts and the tests.

A `TaskClient` serves the broker and install of the settings it was built from, with a Celery app of its own
(workers.app.create_app): two clients of two installs or two brokers live side by side in one process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from celery.result import AsyncResult
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.config import Settings
from workers.app import create_app
from workers.errors import QueueUnavailable, error_class, error_of
from workers.messages import spec_of

RETRY_POLICY = {"max_retries": 3, "interval_start": 0.5, "interval_step": 1.0}


@dataclass(frozen=True, slots=True)
class TaskStatus:
    id: str
    state: str  # PENDING | STARTED | PROGRESS | SUCCESS | FAILURE | RETRY | REVOKED | UNKNOWN
    result: Any
    error: str | None  # the message of a failure (or why the state is UNKNOWN)
    error_code: str | None = None  # a failure's code (workers.errors)

    @property
    def broker_lost(self) -> bool:
        """Failed because Redis went away around the task, not because of its work (its message may be
        gone with it): resubmitting is safe, every task being idempotent."""
        return self.state == "FAILURE" and self.error_code == QueueUnavailable.code

    @property
    def done(self) -> bool:
        return self.state in ("SUCCESS", "FAILURE", "REVOKED")

    def raise_error(self) -> NoReturn:
        """Raise a failure as its typed error (model.errors, services.errors, workers.errors ...)."""
        if self.state != "FAILURE" or self.error_code is None:
            raise ValueError(f"task {self.id} did not fail (state {self.state})")
        raise error_class(self.error_code)(self.error)


class TaskClient:
    """Tasks sent to the settings' install on the settings' Redis, and their states read back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)

    def __enter__(self) -> TaskClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of this client's app (kombu keeps the connection pools of a broker for the process)."""
        self.app.close()

    def submit(self, task: str, *args: Any, **kwargs: Any) -> str:
        """Send a task (by its short name, workers.messages.TASKS); a broker outage is a clear error, never a
        half-submitted task. The arguments are checked by the worker, as anyone's are."""
        name = spec_of(task).celery_name
        try:
            sent = self.app.send_task(name, args=args, kwargs=kwargs, retry=True, retry_policy=RETRY_POLICY)
        except (OperationalError, RedisConnectionError) as exc:
            raise QueueUnavailable(
                f"the task queue at {self.settings.redis_url} does not answer ({exc}); start Redis "
                "(`python scripts/local_services.py start`) and try again"
            ) from exc
        return str(sent.id)

    def status(self, task_id: str) -> TaskStatus:
        """The task's state; UNKNOWN (not done) while the result backend cannot be reached."""
        res = AsyncResult(task_id, app=self.app)
        try:
            state = res.state
        except (RedisConnectionError, OperationalError) as exc:
            return TaskStatus(task_id, "UNKNOWN", None, f"result backend unreachable: {exc}")
        if state == "FAILURE":
            code, message = error_of(res.result)
            return TaskStatus(task_id, state, None, message, code)
        return TaskStatus(task_id, state, res.result if state in ("SUCCESS", "PROGRESS") else None, None)

    def finished(self, pending: set[str], deadline: float, poll: float = 0.5) -> Iterator[TaskStatus]:
        """Each task of `pending` as soon as it is done (and removed from the set), until the set is empty
        or the deadline (time.monotonic()) passes; the caller may add tasks to the set meanwhile."""
        while pending and time.monotonic() < deadline:
            for tid in list(pending):
                st = self.status(tid)
                if st.done:
                    pending.discard(tid)
                    yield st
            if pending:
                time.sleep(poll)

    def wait(self, task_ids: Sequence[str], timeout: float = 600.0, poll: float = 0.5) -> dict[str, TaskStatus]:
        """Poll until every task is done or the timeout passes; returns the last status of each."""
        pending = set(task_ids)
        last = {st.id: st for st in self.finished(pending, time.monotonic() + timeout, poll)}
        return {tid: last[tid] if tid in last else self.status(tid) for tid in task_ids}

    def cancel(self, task_id: str) -> None:
        """Revoke a queued task (a running one finishes its current step; tasks are idempotent)."""
        self.app.control.revoke(task_id)

    def workers_online(self, timeout: float = 1.0) -> dict[str, int]:
        """This install's worker names -> their active task count (empty when none answers)."""
        replies = self.app.control.inspect(timeout=timeout).active() or {}
        return {name: len(active) for name, active in replies.items()}

    def queue_lengths(self) -> dict[str, int]:
        """Tasks waiting on each of this install's queues."""
        with self.app.connection_for_read() as conn:
            redis = conn.default_channel.client
            return {q.name: int(redis.llen(q.name)) for q in self.app.conf.task_queues}
