"""The worker launcher (scripts.supervisor.launcher) for real: a worker runs on the settings it is started with,
whatever this process's own FACEREG_* variables say."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from model.pipeline import FacePipeline
from scripts.supervisor import launcher
from services.config import Settings
from services.context import open_context
from services.registry.galleries import ensure_gallery
from tests.conftest import free_port
from tests.integration.conftest import isolated_settings
from workers.client import TaskClient


def test_a_worker_uses_the_settings_it_was_given_not_the_environment(
    infra: Settings, tmp_path: Path, mfn: FacePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated_settings(infra, tmp_path, model="mobilefacenet", install_name=f"launch-{uuid.uuid4().hex[:8]}")
    assert settings.chroma_mode == "server"  # the session's Chroma server (its own database for this install)
    ensure_gallery(open_context(settings, mfn), "launched")  # only in the settings' database
    # What this process's environment says instead: another database, data folder and install, Chroma server.
    monkeypatch.setenv("FACEREG_MONGO_URI", f"{infra.mongo_uri.rsplit('/', 1)[0]}/elsewhere")
    monkeypatch.setenv("FACEREG_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("FACEREG_INSTALL_NAME", "elsewhere")
    monkeypatch.setenv("FACEREG_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("FACEREG_CHROMA_PORT", str(free_port()))  # nothing answers there

    procs = launcher.start_workers(settings, 1, tmp_path / "logs", name="launch")
    try:
        assert launcher.wait_online(settings, 1, timeout=180) == 1, "the worker is not on the settings' install"
        with TaskClient(settings) as client:
            done = next(iter(client.wait([client.submit("reconcile", "launched")], timeout=120).values()))
    finally:
        launcher.stop_workers(procs)
    assert done.state == "SUCCESS", done.error
    assert done.result["gallery"] == "launched" and done.result["faces"] == 0  # found in the settings' database
    assert not (tmp_path / "elsewhere").exists()  # the worker made its own data folder private, not this one
