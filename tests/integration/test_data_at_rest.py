"""Data at rest is private: after a demo-sized run through the real local services and workers, nothing
under the data folder is readable by group or others, although the user's umask is the usual 022."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.config import REPO_ROOT, Settings
from tests.conftest import free_port
from workers import payloads
from workers.client import TaskClient

pytestmark = pytest.mark.slow

PEOPLE = ("Aaron_Peirsol", "Colin_Powell", "Tony_Blair")  # each has at least 3 photos in LFW


def loose_entries(root: Path) -> list[str]:
    """Every entry under `root` (root included; symlinks are not followed) with a group or other bit."""
    out: list[str] = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            out.append(f"{stat.filemode(st.st_mode)} {path.relative_to(root.parent)}")
    return out


@dataclass
class Local:
    data_dir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = self.run(*args, timeout=timeout)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        return proc


@pytest.fixture
def local(tmp_path: Path, umask_022: None) -> Iterator[Local]:
    missing = [p for p in ("redis-server", "secantusd-py") if not (Path(sys.executable).parent / p).exists()]
    missing = [p for p in missing if not shutil.which(p)]
    if missing and os.environ.get("CI"):
        pytest.fail(f"{', '.join(missing)} missing in CI")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEREG_")}
    env.update(
        FACEREG_DATA_DIR=str(tmp_path / "data"),
        FACEREG_MONGO_URI=f"mongodb://127.0.0.1:{free_port()}/facereg_rest",
        FACEREG_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        FACEREG_CHROMA_PORT=str(free_port()),
        FACEREG_MODEL="mobilefacenet",
        FACEREG_TORCH_THREADS="1",
    )
    env_local = Local(tmp_path / "data", env)
    try:
        yield env_local
    finally:
        if list((env_local.data_dir / "run").glob("*.pid")):
            env_local.run("scripts/local_services.py", "stop", timeout=60)


@pytest.fixture
def queue(local: Local) -> Iterator[TaskClient]:
    """A task client of the test's Redis and install."""
    settings = Settings(mongo_uri=local.env["FACEREG_MONGO_URI"], redis_url=local.env["FACEREG_REDIS_URL"])
    with TaskClient(settings) as tasks:
        yield tasks


def people_folder(lfw: Path, dest: Path) -> Path:
    for person in PEOPLE:
        (dest / person).mkdir(parents=True)
        for img in sorted((lfw / "images" / person).glob("*.jpg"))[:3]:
            (dest / person / img.name).symlink_to(img)
    return dest


def test_a_demo_run_leaves_nothing_readable_by_others(
    local: Local, queue: TaskClient, lfw: Path, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        stack.callback(local.run, "scripts/local_services.py", "stop", timeout=60)
        local.ok("scripts/local_services.py", "start", "--workers", "1")

        folder = people_folder(lfw, tmp_path / "people")
        # Through the queue the folder must lie under the input roots (its symlinks lead into the datasets).
        local.env["FACEREG_INPUT_ROOTS"] = os.pathsep.join(map(str, [local.data_dir, folder, lfw.parent]))
        reports = local.data_dir / "reports"
        build = local.ok(
            "scripts/build_database.py",
            *(str(folder), "--gallery", "rest", "--enroll-per-person", "2", "--evaluate", "--out", str(reports)),
            timeout=300,
        )
        report: dict[str, Any] = json.loads(build.stdout.strip().splitlines()[-1])
        assert report["summary"]["faces_mongo"] == 6 == report["summary"]["vectors_chroma"], report

        # An attendance snapshot, written by the worker.
        frame = payloads.from_path(lfw / "images" / "Colin_Powell" / "Colin_Powell_0003.jpg")
        tid = queue.submit("process_frames", [frame], "door-1", "rest", ["2026-11-02T08:00:00+00:00"])
        res = queue.wait([tid], timeout=120)[tid]
        assert res.state == "SUCCESS", res.error
        assert res.result[0]["faces"][0]["event_id"] is not None

        stopped = json.loads(local.ok("scripts/local_services.py", "stop", timeout=60).stdout.strip().splitlines()[-1])
        assert not any(s["up"] for s in stopped.values()), stopped
        stack.pop_all()

    data = local.data_dir
    written = {p.relative_to(data).parts[0] for p in data.rglob("*") if p.is_file()}
    assert {"images", "mongo", "redis", "chroma-server", "logs", "reports", "snapshots"} <= written, written
    assert len(list((data / "images" / "rest").rglob("*_chip.png"))) == 6
    assert list((data / "snapshots").rglob("*.jpg"))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    loose = loose_entries(data)
    assert not loose, f"{len(loose)} entries readable by group or others:\n" + "\n".join(loose[:50])


def test_an_existing_world_readable_install_is_tightened_on_start(local: Local) -> None:
    data = local.data_dir
    (data / "images" / "g" / "p1").mkdir(parents=True)
    (data / "logs").mkdir()
    (data / "images" / "g" / "p1" / "a.img").write_bytes(b"an old original")
    (data / "logs" / "old.log").write_text("an old log\n")
    assert len(loose_entries(data)) == 7  # 0755 folders and 0644 files under umask 022

    started = local.ok("scripts/local_services.py", "start")
    lines = [line for line in started.stderr.splitlines() if "data at rest" in line]
    assert len(lines) == 1, started.stderr
    assert "INFO" in lines[0] and "tightened 2 file(s) and 5 folder(s)" in lines[0]
    again = local.ok("scripts/local_services.py", "start")  # already private: no line
    assert "data at rest" not in again.stderr
    local.ok("scripts/local_services.py", "stop", timeout=60)

    loose = loose_entries(data)
    assert not loose, "\n".join(loose)
    assert (data / "images" / "g" / "p1" / "a.img").read_bytes() == b"an old original"
