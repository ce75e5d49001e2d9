"""Work sent to the worker queue and followed from a page: submit, live progress, result.

A page never does long work in its own script run: it submits a task, keeps the task id in the
browser session, and a fragment re-polls every second until the task is done.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.session import context, settings, signed_in_user
from services.errors import NotFound
from services.storage.jobs import get_job
from workers.client import TaskClient, TaskStatus
from workers.errors import QueueUnavailable

STATE_LABELS = {
    "PENDING": "waiting for a worker",
    "STARTED": "running",
    "RETRY": "retrying after a storage outage",
    "PROGRESS": "running",
    "UNKNOWN": "the queue does not answer; still trying",
}


@st.cache_resource(show_spinner=False)
def _client(redis_url: str, install: str) -> TaskClient:
    """One task client per server process, broker and install: the arguments are only the cache key, the client is
    built from the settings they come from."""
    return TaskClient(settings())


def client() -> TaskClient:
    s = settings()
    return _client(s.redis_url, s.install)


@st.cache_data(ttl=10, show_spinner=False)
def worker_health() -> dict[str, Any]:
    """Workers online (name -> active tasks) and tasks waiting per queue; errors as text."""
    try:
        queue = client()
        return {"workers": queue.workers_online(timeout=1.0), "queues": queue.queue_lengths(), "error": None}
    except Exception as exc:  # the broker down shows as a message, never as a crashed page
        return {"workers": {}, "queues": {}, "error": f"{type(exc).__name__}: {exc}"}


def submit(key: str, task: str, *args: Any, **kwargs: Any) -> str | None:
    """Send a task and remember it under `key`; the queue being down is shown, not raised."""
    try:
        tid = client().submit(task, *args, **kwargs)
    except QueueUnavailable as exc:
        st.error(str(exc))
        return None
    st.session_state[f"task:{key}"] = tid
    return tid


def forget(key: str) -> None:
    st.session_state.pop(f"task:{key}", None)


def task_id(key: str) -> str | None:
    tid = st.session_state.get(f"task:{key}")
    return str(tid) if tid else None


def follow(key: str, label: str) -> TaskStatus | None:
    """The final status of the task under `key` once done; meanwhile a live progress line (None)."""
    tid = task_id(key)
    if tid is None:
        return None
    status = client().status(tid)
    if status.done:
        return status
    _live(key, tid, label)
    return None


def show_failure(status: TaskStatus) -> bool:
    """An error box for a failed task; True when it failed."""
    if status.state == "SUCCESS":
        return False
    if status.broker_lost:
        st.error("The queue went away while this ran; nothing was half-done. Submit it again.")
    elif status.state == "REVOKED":
        st.warning("Cancelled.")
    else:
        st.error(f"The task failed: {status.error}")
    return True


@st.fragment(run_every=1.0)
def _live(key: str, tid: str, label: str) -> None:
    if signed_in_user(touch=False) is None:  # the session ended while this polled: the whole app reruns
        st.rerun()
    status = client().status(tid)
    if status.done:
        st.rerun()
    done, total = _job_counts(tid)
    text = f"{label}: {STATE_LABELS.get(status.state, status.state.lower())}"
    if total:
        st.progress(min(done / total, 1.0), text=f"{text} ({done}/{total})")
    else:
        st.progress(0.0 if status.state == "PENDING" else 0.5, text=text)
    if status.state == "PENDING" and not worker_health()["workers"]:
        st.warning("No worker is online. Start one with `python scripts/local_services.py start --workers 1`.")
    if st.button("Cancel", key=f"cancel:{tid}"):
        client().cancel(tid)  # a queued task is dropped; a running one finishes (tasks are idempotent)
        forget(key)
        st.rerun()


def _job_counts(tid: str) -> tuple[int, int]:
    """Progress counts of a task that keeps a job record (evaluations use the task id as job id)."""
    try:
        job = get_job(context(), tid)
    except NotFound:
        return 0, 0
    return job.done, job.total
