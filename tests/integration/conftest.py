"""Real local servers for the service tests: a MongoDB-protocol server (and Redis) on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from model.pipeline import FacePipeline
from scripts.supervisor import launcher
from services.config import REPO_ROOT, Settings
from services.context import ServiceContext, open_context


def isolated_settings(infra: Settings, tmp_path: Path, **overrides: object) -> Settings:
    """A fresh install per test: its own MongoDB database (hence its own Chroma database) and data dir (stored
    images), on the shared servers."""
    base = infra.mongo_uri.rsplit("/", 1)[0]
    return infra.model_copy(
        update={"mongo_uri": f"{base}/t{uuid.uuid4().hex[:12]}", "data_dir": tmp_path / "data", **overrides}
    )


def project_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The FACEREG_* variables that put a process of the project on these servers, database and data dir."""
    return {
        "FACEREG_MONGO_URI": settings.mongo_uri,
        "FACEREG_REDIS_URL": settings.redis_url,
        "FACEREG_CHROMA_MODE": settings.chroma_mode,
        "FACEREG_CHROMA_HOST": settings.chroma_host,
        "FACEREG_CHROMA_PORT": str(settings.chroma_port),
        "FACEREG_DATA_DIR": str(settings.data_dir),
        "FACEREG_INPUT_ROOTS": os.pathsep.join(map(str, settings.allowed_input_roots)),
        "FACEREG_MODEL": "mobilefacenet",
        "FACEREG_TIMEZONE": settings.timezone,
        **extra,
    }


def run_python(
    settings: Settings, args: list[str], timeout: float = 900, **env: str
) -> subprocess.CompletedProcess[str]:
    """A child Python process of the project on the same servers, database and data dir."""
    child_env = {**os.environ, **project_env(settings, FACEREG_TORCH_THREADS="1", **env)}
    return subprocess.run(
        [sys.executable, *args],
        env=child_env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def ctx(infra: Settings, tmp_path: Path, mfn: FacePipeline) -> ServiceContext:
    return open_context(isolated_settings(infra, tmp_path), mfn)


@contextmanager
def running_workers(settings: Settings, n: int, name: str, **env: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """N local workers of these settings, online; `env` (variables other than settings) is added to their
    environment. Stopped after."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        procs = launcher.start_workers(settings, n, settings.data_dir / "logs", name=name)
    try:
        assert launcher.wait_online(settings, n, timeout=180) == n, "the workers did not come online"
        yield procs
    finally:
        launcher.stop_workers(procs)


CHILD_WATCH = REPO_ROOT / "tests" / "support" / "childwatch"


def child_watch_env(
    peak_log: Path | None = None,
    open_log: Path | None = None,
    watched: Sequence[str] = (),
    pythonpath: str = os.environ.get("PYTHONPATH", ""),
) -> dict[str, str]:
    """Child-process variables that turn on tests/support/childwatch: the child writes its own peak memory to
    `peak_log` at exit, and logs to `open_log` any open of a `watched` file."""
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(CHILD_WATCH), pythonpath) if p)}
    if peak_log is not None:
        env["FACEREG_TEST_PEAK_LOG"] = str(peak_log)
    if open_log is not None:
        env |= {"FACEREG_TEST_OPEN_WATCH": os.pathsep.join(watched), "FACEREG_TEST_OPEN_LOG": str(open_log)}
    return env


def probed_peak_mib(peak_log: Path) -> float:
    """The peak memory (MiB) the last watched child wrote to `peak_log` when it finished."""
    assert peak_log.exists(), "the child wrote no peak: it did not finish Python's exit"
    return int(peak_log.read_text().split()[-1]) / 1024
