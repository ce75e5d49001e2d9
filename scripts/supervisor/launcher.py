"""Celery workers as child processes of the caller (tests, build_database, the queue benchmark): the same command
and environment as the supervisor's workers (catalogue.worker_args, worker_env: the given settings whole), started
with the same launch, handed back as Popen objects instead of pid files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scripts.supervisor.catalogue import worker_args, worker_env
from scripts.supervisor.processes import child_env, launch
from services.config import REPO_ROOT, Settings
from services.storage.private_files import private_umask
from workers.client import TaskClient


def start_workers(
    settings: Settings, n: int, log_dir: Path, threads: int = 1, queues: Sequence[str] = (), name: str = "local"
) -> list[subprocess.Popen[bytes]]:
    """N single-process workers of `settings` with `threads` torch threads each, on the settings' install's
    queues (`queues`: only these full queue names, see workers.app.queue_name). Their logs are 0600 in a 0700
    folder (log_dir/worker-<name>-<i>.log); the workers make their own files private (workers.worker)."""
    private_umask()
    env = child_env(worker_env(settings, threads))
    procs = []
    for i in range(n):
        argv = [sys.executable, "-m", "celery", *worker_args(f"{name}-{i}-{os.getpid()}@%h", queues)]
        procs.append(launch(argv, REPO_ROOT, env, log_dir / f"worker-{name}-{i}.log"))
    return procs


def wait_online(settings: Settings, expected: int, timeout: float = 120.0) -> int:
    """How many of the settings' install's workers answer, polled until `expected` do or `timeout` passes."""
    deadline = time.monotonic() + timeout
    with TaskClient(settings) as client:  # its own app: no other client's state is touched
        while True:
            online = len(client.workers_online(timeout=1.0))
            if online >= expected or time.monotonic() >= deadline:
                return online
            time.sleep(1.0)


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Warm shutdown (SIGTERM lets the running task finish), then SIGKILL of the whole process group."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
