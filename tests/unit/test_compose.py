"""docker-compose.yml must be accepted by `docker-compose config` (no engine needed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from services.config import REPO_ROOT


def test_docker_compose_config_accepts_the_file() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed; `make test` installs it (scripts/install_system_deps.sh)")
    proc = subprocess.run([exe, "config"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for service in ("mongo:", "redis:", "chroma:", "worker:", "facereg:"):
        assert service in proc.stdout
