"""scripts/local_services.py against real processes: SecantusDB, redis-server and a Chroma server on free ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo
import pytest
import redis

from services.config import REPO_ROOT

pytestmark = pytest.mark.slow

REDIS_SERVER = shutil.which("redis-server")
SECANTUSD = Path(sys.executable).parent / "secantusd-py"


def _require_programs() -> None:
    """Missing servers skip locally but fail in CI, where scripts/install_system_deps.sh has run."""
    missing = [name for name, ok in (("redis-server", REDIS_SERVER), ("secantusd-py", SECANTUSD.exists())) if not ok]
    if missing and os.environ.get("CI"):
        pytest.fail(f"{', '.join(missing)} missing in CI")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")


def free_ports(n: int) -> list[int]:
    """n distinct ports that are free on 127.0.0.1 right now."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def alive(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())  # empty for a zombie
    except OSError:
        return False


@dataclass
class Local:
    """One isolated set of settings: a temporary data dir and free ports, passed as FACEREG_* variables."""

    data_dir: Path
    ports: dict[str, int]
    env: dict[str, str]

    @property
    def mongo_uri(self) -> str:
        return self.env["FACEREG_MONGO_URI"]

    @property
    def redis_url(self) -> str:
        return self.env["FACEREG_REDIS_URL"]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "scripts/local_services.py", *args],
            env={**self.env, **env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, **env: str) -> dict[str, Any]:
        """Run the script, expect exit code 0 and no traceback; the status JSON of its last line."""
        proc = self.run(*args, **env)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        return last_json(proc.stdout)

    def pid_files(self) -> list[Path]:
        return sorted((self.data_dir / "run").glob("*.pid"))


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    _require_programs()
    mongo, redis_port, chroma = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEREG_")}
    env.update(
        FACEREG_DATA_DIR=str(tmp_path / "data"),
        FACEREG_MONGO_URI=f"mongodb://127.0.0.1:{mongo}/facereg_test",
        FACEREG_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        FACEREG_CHROMA_PORT=str(chroma),
    )
    ports = {"mongo": mongo, "redis": redis_port, "chroma": chroma}
    env_local = Local(tmp_path / "data", ports, env)
    yield env_local
    if env_local.pid_files():
        env_local.run("stop")
        _kill_leftovers(env_local)


def _kill_leftovers(env_local: Local) -> None:
    """Safety net when `stop` itself failed: SIGKILL pid-file processes that serve one of our ports."""
    for pid_file in env_local.pid_files():
        pid = int(pid_file.read_text().split()[0])
        with suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if any(str(port) in cmdline for port in env_local.ports.values()):
                os.kill(pid, signal.SIGKILL)


def _popen_cleanup(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def foreign_redis(local: Local, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server this test starts itself, on the port FACEREG_REDIS_URL names: not the tool's."""
    (tmp_path / "foreign").mkdir()
    cmd = [str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(local.ports["redis"]), "--save", ""]
    proc = subprocess.Popen(cmd, cwd=tmp_path / "foreign", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis.from_url(local.redis_url)
        deadline = time.monotonic() + 10
        while True:
            with suppress(redis.ConnectionError):
                if client.ping():
                    break
            assert time.monotonic() < deadline and proc.poll() is None, "foreign redis-server did not start"
            time.sleep(0.05)
        yield proc
    finally:
        _popen_cleanup(proc)


def mongo_client(uri: str) -> pymongo.MongoClient[dict[str, Any]]:
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000)


def test_status_when_nothing_runs(local: Local) -> None:
    report = local.ok("status")
    assert report["mongo"] == {"uri": local.mongo_uri, "up": False, "managed": False, "pid": None}
    assert report["redis"] == {"uri": local.redis_url, "up": False, "managed": False, "pid": None}
    url = f"http://127.0.0.1:{local.ports['chroma']}"
    assert report["chroma"] == {"url": url, "up": False, "managed": False, "pid": None, "mode": "server"}
    embedded = local.ok("status", FACEREG_CHROMA_MODE="embedded")["chroma"]
    assert embedded["url"] == f"embedded:{local.data_dir / 'chroma'}"
    assert embedded["up"] is True and embedded["mode"] == "embedded" and embedded["managed"] is False


def test_start_is_idempotent_and_stop_cleans_up(local: Local) -> None:
    started = local.ok("start")
    pids = {name: started[name]["pid"] for name in ("mongo", "redis", "chroma")}
    for name in ("mongo", "redis", "chroma"):
        assert started[name]["up"] is True and started[name]["managed"] is True
        assert isinstance(pids[name], int) and alive(pids[name])
    assert started["chroma"]["mode"] == "server"

    with mongo_client(local.mongo_uri) as client:
        client.facereg_test.people.insert_one({"_id": "p1", "name": "Ada"})
        assert client.facereg_test.people.find_one({"_id": "p1"}) == {"_id": "p1", "name": "Ada"}
    with redis.Redis.from_url(local.redis_url) as r:
        r.set("k", "v")
        assert r.get("k") == b"v"

    assert local.ok("status") == started
    again = local.ok("start")
    assert {name: again[name]["pid"] for name in ("mongo", "redis", "chroma")} == pids

    stopped = local.ok("stop")
    for name in ("mongo", "redis", "chroma"):
        assert stopped[name]["up"] is False and stopped[name]["managed"] is False
        assert stopped[name]["pid"] is None and not alive(pids[name])
    assert local.pid_files() == []
    assert local.ok("stop") == stopped  # idempotent


def test_mongo_data_persists_across_stop_and_start(local: Local) -> None:
    local.ok("start")
    with mongo_client(local.mongo_uri) as client:
        client.facereg_test.people.insert_one({"_id": "p2", "name": "Grace"})
    local.ok("stop")
    assert local.ok("start")["mongo"]["up"] is True
    with mongo_client(local.mongo_uri) as client:
        assert client.facereg_test.people.find_one({"_id": "p2"}) == {"_id": "p2", "name": "Grace"}


def test_stop_leaves_foreign_services_alone(local: Local, foreign_redis: subprocess.Popen[bytes]) -> None:
    # The foreign redis answers already: start leaves it alone, even without redis-server on PATH.
    started = local.ok("start", PATH="/nonexistent")
    assert started["redis"] == {"uri": local.redis_url, "up": True, "managed": False, "pid": None}
    assert started["mongo"]["managed"] is True
    # A stale pid file of ours whose pid now names the foreign process (pid reuse) must not get it killed.
    (local.data_dir / "run" / "redis.pid").write_text(f"{foreign_redis.pid} 1\n")

    stopped = local.ok("stop")
    assert stopped["mongo"]["up"] is False
    assert stopped["redis"] == {"uri": local.redis_url, "up": True, "managed": False, "pid": None}
    assert foreign_redis.poll() is None
    with redis.Redis.from_url(local.redis_url) as r:
        assert r.set("still", "here") and r.get("still") == b"here"
    assert local.pid_files() == []


def test_the_chroma_server_is_the_default_and_embedded_starts_none(local: Local) -> None:
    url = f"http://127.0.0.1:{local.ports['chroma']}"
    started = local.ok("start")
    chroma = started["chroma"]
    assert chroma["url"] == url and chroma["mode"] == "server"
    assert chroma["up"] is True and chroma["managed"] is True and alive(chroma["pid"])
    with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=5) as resp:
        assert resp.status == 200 and "nanosecond heartbeat" in json.loads(resp.read())
    assert (local.data_dir / "chroma-server" / "chroma.sqlite3").is_file()

    stopped = local.ok("stop")
    assert stopped["chroma"] == {"url": url, "up": False, "managed": False, "pid": None, "mode": "server"}
    assert not alive(chroma["pid"])

    embedded = local.ok("start", FACEREG_CHROMA_MODE="embedded")
    assert embedded["chroma"]["mode"] == "embedded" and embedded["chroma"]["pid"] is None
    assert not (local.data_dir / "run" / "chroma.pid").exists()
    local.ok("stop", FACEREG_CHROMA_MODE="embedded")


def test_failures_are_one_line_errors(local: Local) -> None:
    # Something that is not MongoDB holds the mongo port, and redis-server cannot be found (Chroma embedded: this
    # test is about the other two).
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", local.ports["mongo"]))
        blocker.listen()
        proc = local.run("start", PATH="/nonexistent", FACEREG_CHROMA_MODE="embedded")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "apt-get install redis-server" in proc.stderr
    assert str(local.data_dir / "logs" / "mongo.log") in proc.stderr
    report = last_json(proc.stdout)
    assert report["mongo"]["up"] is False and report["redis"]["up"] is False
    assert local.pid_files() == []

    bad = local.run("status", FACEREG_CHROMA_PORT="not-a-port")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: invalid setting FACEREG_CHROMA_PORT")
