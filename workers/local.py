"""Starting and stopping local Celery worker processes (scripts, tests, the demo)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scripts.supervisor.local_infra import celery_worker_args
from services.config import REPO_ROOT, Settings
from services.storage.private_files import open_private_log, private_mkdir, private_umask
from workers.client import use_settings, workers_online


def start_workers(
    settings: Settings, n: int, log_dir: Path, threads: int = 1, queues: Sequence[str] = (), name: str = "local"
) -> list[subprocess.Popen[bytes]]:
    """N single-process workers with `threads` torch threads each (1: see local_infra.WORKER_THREADS), on the
    settings' install's queues (`queues`: only these full queue names, see workers.app.queue_name).

    This process's client is pointed at the same broker and install (client.use_settings), so what it submits
    reaches these workers and `wait_online` sees them. Their logs are 0600 in a 0700 folder; the workers make
    their own files private (workers.app)."""
    use_settings(settings)
    private_umask()
    private_mkdir(log_dir)
    env = {
        **os.environ,
        "FACEREG_TORCH_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "FACEREG_MONGO_URI": settings.mongo_uri,
        "FACEREG_REDIS_URL": settings.redis_url,
        "FACEREG_DATA_DIR": str(settings.data_dir),
        "FACEREG_MODEL": settings.model,
        "FACEREG_RUNTIME": settings.runtime,
        "FACEREG_DETECTOR": settings.detector,
        "FACEREG_INPUT_ROOTS": os.pathsep.join(map(str, settings.allowed_input_roots)),
        "FACEREG_INSTALL_NAME": settings.install,
    }
    if settings.chroma_host:
        env["FACEREG_CHROMA_HOST"] = settings.chroma_host
    procs = []
    for i in range(n):
        log = open_private_log(log_dir / f"worker-{name}-{i}.log")
        cmd = [sys.executable, "-m", "celery", *celery_worker_args(f"{name}-{i}-{os.getpid()}@%h", queues)]
        procs.append(
            subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    return procs


def wait_online(expected: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    online = 0
    while time.monotonic() < deadline:
        online = len(workers_online(timeout=1.0))
        if online >= expected:
            return online
        time.sleep(1.0)
    return online


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
