"""Real local servers for the service tests: a MongoDB-protocol server (and Redis) on free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.pipeline import FacePipeline
from services import local_infra
from services.config import REPO_ROOT, Settings
from services.context import ServiceContext, open_context


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One MongoDB-protocol server and one Redis for the whole session, under a temporary data dir."""
    data = tmp_path_factory.mktemp("infra")
    settings = Settings(
        data_dir=data,
        mongo_uri=f"mongodb://127.0.0.1:{free_port()}/facereg",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        torch_threads=2,
    )
    problems = local_infra.start(settings)
    if problems:
        local_infra.stop(settings)
        pytest.fail("local services did not start: " + "; ".join(problems))
    yield settings
    local_infra.stop(settings)


def isolated_settings(infra: Settings, tmp_path: Path, **overrides: object) -> Settings:
    """A fresh database and data dir (embedded Chroma, stored images) per test, on the shared servers."""
    base = infra.mongo_uri.rsplit("/", 1)[0]
    return infra.model_copy(
        update={"mongo_uri": f"{base}/t{uuid.uuid4().hex[:12]}", "data_dir": tmp_path / "data", **overrides}
    )


def run_python(
    settings: Settings, args: list[str], timeout: float = 900, **env: str
) -> subprocess.CompletedProcess[str]:
    """A child Python process of the project on the same servers, database and data dir."""
    child_env = {
        **os.environ,
        "FACEREG_MONGO_URI": settings.mongo_uri,
        "FACEREG_REDIS_URL": settings.redis_url,
        "FACEREG_DATA_DIR": str(settings.data_dir),
        "FACEREG_MODEL": "mobilefacenet",
        "FACEREG_TORCH_THREADS": "1",
        **env,
    }
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
