"""Local services: the MongoDB-protocol server (SecantusDB), Redis, a Chroma server, Celery workers and
the dashboard.

Each runs on 127.0.0.1 with its data under `Settings.data_dir`: mongo/, redis/, chroma-server/, logs in
logs/, pid files in run/. All of it is private: `start` sets umask 077 before it spawns anything (the
servers inherit it) and tightens an existing data folder (services.storage.private_files). A service that
already answers at its configured address is left alone; `stop` only ends processes whose pid file this
module wrote and which are still the very process it started (same pid, start time and program), so it
never kills a foreign or a pid-reused process.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

import pymongo
import redis
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from model.errors import FaceregError
from services.config import REPO_ROOT, Settings
from services.storage.private_files import open_private_log, private_mkdir, secure_process, write_private

log = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
BIND_HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0  # SecantusDB takes ~3.5 s to shut down cleanly on SIGTERM
PROBE_TIMEOUT_S = 0.5
PROC = Path("/proc")
CHROMA_HEARTBEAT = "/api/v2/heartbeat"


class InfraError(FaceregError):
    """The settings do not describe usable local services (an invalid value, an unreadable address)."""


@dataclass(frozen=True)
class Service:
    """One service: where it answers, how to start it here, and where its files go."""

    name: str
    address_key: Literal["uri", "url"]
    address: str
    host: str | None  # None: not one plain TCP host (unix socket, TLS redis, SRV, several hosts)
    port: int
    program: str  # executable name; also what its /proc/<pid>/cmdline must contain
    args: tuple[str, ...]
    workdir: Path
    data_dir: Path
    install_hint: str
    probe: Callable[[], bool]
    env: tuple[tuple[str, str], ...] = ()  # added to this process's environment

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def startable(self) -> bool:
        return self.host in LOCAL_HOSTS


# --- settings and service descriptions ---------------------------------------------------------


def load_settings() -> Settings:
    """A fresh Settings from the environment; a bad value becomes one clear InfraError."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InfraError(f"invalid setting FACEREG_{field.upper()}: {first['msg']}") from None


def _host_port(url: str, default_port: int, setting: str) -> tuple[str | None, int]:
    parts = urlsplit(url)
    if "," in parts.netloc or parts.scheme in {"mongodb+srv", "rediss", "unix"}:
        return None, default_port
    try:
        return parts.hostname, parts.port or default_port
    except ValueError:
        raise InfraError(f"{setting}: cannot read a port in {redact(url)!r}") from None


def _data_dir(settings: Settings) -> Path:
    return settings.data_dir.expanduser().resolve()


def mongo_service(settings: Settings) -> Service:
    host, port = _host_port(settings.mongo_uri, 27017, "FACEREG_MONGO_URI")
    data = _data_dir(settings)
    storage = data / "mongo"
    args = ("--host", BIND_HOST, "--port", str(port), "--storage-path", str(storage), "--standalone")
    return Service(
        name="mongo",
        address_key="uri",
        address=settings.mongo_uri,
        host=host,
        port=port,
        program="secantusd-py",
        args=args,
        workdir=storage,  # cwd too: secantusd-py would otherwise pick up a ./secantusd.toml
        data_dir=data,
        install_hint="install it with `pip install secantusdb` (in the project's virtualenv)",
        probe=partial(mongo_answers, settings.mongo_uri),
    )


def redis_service(settings: Settings) -> Service:
    host, port = _host_port(settings.redis_url, 6379, "FACEREG_REDIS_URL")
    data = _data_dir(settings)
    workdir = data / "redis"
    # Dev default: no RDB snapshots, an append-only file so queued tasks survive a restart.
    args = (
        *("--bind", BIND_HOST, "--port", str(port), "--dir", str(workdir)),
        *("--daemonize", "no", "--save", "", "--appendonly", "yes", "--logfile", ""),
    )
    return Service(
        name="redis",
        address_key="uri",
        address=settings.redis_url,
        host=host,
        port=port,
        program="redis-server",
        args=args,
        workdir=workdir,
        data_dir=data,
        install_hint="install it with `apt-get install redis-server`",
        probe=partial(redis_answers, settings.redis_url),
    )


def chroma_service(settings: Settings) -> Service:
    host = settings.chroma_host or BIND_HOST
    data = _data_dir(settings)
    workdir = data / "chroma-server"
    args = ("run", "--host", BIND_HOST, "--port", str(settings.chroma_port), "--path", str(workdir))
    return Service(
        name="chroma",
        address_key="url",
        address=f"http://{host}:{settings.chroma_port}",
        host=host,
        port=settings.chroma_port,
        program="chroma",
        args=args,
        workdir=workdir,
        data_dir=data,
        install_hint="install it with `pip install chromadb` (in the project's virtualenv)",
        probe=partial(chroma_answers, host, settings.chroma_port),
    )


# One torch thread per worker process: two busy processes with two threads each on two cores run up
# to 10x slower than with one.
WORKER_THREADS = {"FACEREG_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}


def celery_worker_args(node: str, queues: Sequence[str] = ()) -> tuple[str, ...]:
    """`celery` arguments of one single-process worker (local_services and workers.local both start them).

    No queues: the install's own (workers.app names them after FACEREG_INSTALL_NAME / the database)."""
    only = ("-Q", ",".join(queues)) if queues else ()
    return (
        *("-A", "workers.app", "worker", *only, "--concurrency", "1", "--pool", "prefork"),
        *("-n", node, "--loglevel", "INFO", "--without-gossip", "--without-mingle"),
    )


def worker_service(settings: Settings, index: int) -> Service:
    """One single-process Celery worker on both of the install's queues, one torch thread."""
    data = _data_dir(settings)
    name = f"worker-{index}"
    return Service(
        name=name,
        address_key="url",
        address=settings.redis_url,
        host=BIND_HOST,
        port=0,
        program="celery",
        args=celery_worker_args(f"local-{index}@%h"),
        workdir=REPO_ROOT,
        data_dir=data,
        install_hint="run scripts/bootstrap.sh (celery is in the project's virtualenv)",
        probe=partial(_alive, data / "run" / f"{name}.pid", "celery"),
        env=tuple(WORKER_THREADS.items()),
    )


def dashboard_service(settings: Settings) -> Service:
    data = _data_dir(settings)
    port = settings.dashboard_port
    args = ("run", "dashboard/app.py", "--server.address", BIND_HOST, "--server.port", str(port))
    return Service(
        name="dashboard",
        address_key="url",
        address=f"http://{BIND_HOST}:{port}",
        host=BIND_HOST,
        port=port,
        program="streamlit",
        args=args,
        workdir=REPO_ROOT,  # .streamlit/config.toml is read from here
        data_dir=data,
        install_hint="run scripts/bootstrap.sh (streamlit is in the project's virtualenv)",
        probe=partial(http_ok, BIND_HOST, port, "/_stcore/health"),
    )


def worker_indexes(settings: Settings) -> list[int]:
    """The workers that have a pid file (running or stale)."""
    run = _data_dir(settings) / "run"
    return sorted(int(p.stem.split("-")[1]) for p in run.glob("worker-*.pid") if p.stem.split("-")[1].isdigit())


def services(settings: Settings, workers: int = 0) -> dict[str, Service]:
    out = {
        "mongo": mongo_service(settings),
        "redis": redis_service(settings),
        "chroma": chroma_service(settings),
        "dashboard": dashboard_service(settings),
    }
    for i in sorted({*range(workers), *worker_indexes(settings)}):
        out[f"worker-{i}"] = worker_service(settings, i)
    return out


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    parts: SplitResult = urlsplit(url)
    if not parts.password:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':')[0]}:***@{hosts}"))


# --- probes: does it answer right now? ---------------------------------------------------------


def mongo_answers(uri: str) -> bool:
    ms = int(PROBE_TIMEOUT_S * 1000)
    try:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=2 * ms
        )
    except PyMongoError:
        return False
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S)
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def http_ok(host: str, port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def chroma_answers(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=2 * PROBE_TIMEOUT_S)
    try:
        conn.request("GET", CHROMA_HEARTBEAT)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


# --- pid files and process identity --------------------------------------------------------------


def _ps(pid: int, field: str) -> str | None:
    """One `ps` field of the process (systems without /proc), or None when it is gone."""
    out = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def _cmdline(pid: int) -> str | None:
    """The process's command line, or None when it is gone (a zombie's is empty)."""
    if not PROC.is_dir():
        return _ps(pid, "args")
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None


def _start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot on Linux); with the pid it names one process."""
    if not PROC.is_dir():
        return _ps(pid, "lstart")
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def _read_pid_file(path: Path) -> tuple[int, str] | None:
    """(pid, start time) from a pid file written by `_spawn`, or None."""
    try:
        pid, _, started = path.read_text().strip().partition(" ")
        return (int(pid), started) if started else None
    except (OSError, ValueError):
        return None


def owned_pid(svc: Service) -> int | None:
    """The pid in our pid file when that process is alive and is still the very one we started."""
    return _owned(svc.pid_file, svc.program)


def _owned(pid_file: Path, program: str) -> int | None:
    recorded = _read_pid_file(pid_file)
    if recorded is None:
        return None
    pid, started = recorded
    cmd = _cmdline(pid)
    return pid if cmd and program in cmd and _start_time(pid) == started else None


def _alive(pid_file: Path, program: str) -> bool:
    """A worker "answers" while the process we started lives (it reconnects to the broker by itself)."""
    return _owned(pid_file, program) is not None


def _remove_pid_file(svc: Service) -> None:
    svc.pid_file.unlink(missing_ok=True)


# --- status --------------------------------------------------------------------------------------


def _service_status(svc: Service) -> dict[str, Any]:
    pid = owned_pid(svc)
    return {svc.address_key: redact(svc.address), "up": svc.probe(), "managed": pid is not None, "pid": pid}


def chroma_embedded(settings: Settings) -> bool:
    """Chroma is embedded when no host is configured and no Chroma server of ours runs."""
    return settings.chroma_host is None and owned_pid(chroma_service(settings)) is None


def status(settings: Settings) -> dict[str, dict[str, Any]]:
    svcs = services(settings)
    report = {name: _service_status(svcs[name]) for name in ("mongo", "redis")}
    report["dashboard"] = _service_status(svcs["dashboard"])
    for name in (n for n in svcs if n.startswith("worker-")):
        report[name] = {k: v for k, v in _service_status(svcs[name]).items() if k != "url"}
    if chroma_embedded(settings):
        url = f"embedded:{_data_dir(settings) / 'chroma'}"
        report["chroma"] = {"url": url, "up": True, "mode": "embedded", "managed": False, "pid": None}
    else:
        report["chroma"] = {**_service_status(svcs["chroma"]), "mode": "server"}
    return report


# --- start ---------------------------------------------------------------------------------------


def _find_program(program: str) -> str | None:
    """The virtualenv's own copy first (the venv may not be on PATH), then PATH."""
    beside = Path(sys.executable).parent / program
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which(program)


def _last_log_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _spawn(svc: Service, executable: str) -> subprocess.Popen[bytes]:
    for folder in (svc.workdir, svc.log_file.parent, svc.pid_file.parent):
        private_mkdir(folder)
    argv = [executable, *svc.args]
    with open_private_log(svc.log_file) as logf:
        logf.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        logf.flush()
        # Own session: the service outlives this CLI and its terminal's signals.
        proc = subprocess.Popen(
            argv,
            cwd=svc.workdir,
            env={**os.environ, **dict(svc.env)},
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    write_private(svc.pid_file, f"{proc.pid} {_start_time(proc.pid)}\n".encode())
    log.info("started %s (pid %d), log: %s", svc.name, proc.pid, svc.log_file)
    return proc


def _launch(svc: Service) -> subprocess.Popen[bytes] | str:
    """Start `svc` unless it answers already; a Popen to wait for, or a problem, or '' for nothing to do."""
    if svc.probe():
        pid = owned_pid(svc)
        whose = f"started by this tool, pid {pid}" if pid else "not started by this tool"
        log.info("%s already answers at %s (%s)", svc.name, redact(svc.address), whose)
        return ""
    pid = owned_pid(svc)
    if pid is not None:
        return f"{svc.name} (our pid {pid}) runs but does not answer at {redact(svc.address)}; see {svc.log_file}"
    _remove_pid_file(svc)  # stale: its process is gone
    if not svc.startable:
        return f"{svc.name} does not answer at {redact(svc.address)}, and this tool starts services on 127.0.0.1 only"
    executable = _find_program(svc.program)
    if executable is None:
        return f"{svc.name} is not up and {svc.program} is not installed: {svc.install_hint}"
    return _spawn(svc, executable)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_until_up(pending: dict[Service, subprocess.Popen[bytes]], timeout: float) -> list[str]:
    """Wait until every started service answers; a problem per one that exits or times out."""
    problems: list[str] = []
    t0 = time.monotonic()
    while pending:
        for svc, proc in list(pending.items()):
            failure = ""
            if svc.probe():
                log.info("%s is up at %s after %.1f s", svc.name, redact(svc.address), time.monotonic() - t0)
            elif proc.poll() is not None:
                last = _last_log_line(svc.log_file)
                failure = f"{svc.name} exited with code {proc.returncode} while starting ({last!r}); see {svc.log_file}"
            elif time.monotonic() - t0 > timeout:
                failure = f"{svc.name} did not answer at {redact(svc.address)} in {timeout:.0f} s; see {svc.log_file}"
                _terminate(proc)
            else:
                continue
            del pending[svc]
            if failure:
                problems.append(failure)
                _remove_pid_file(svc)
        if pending:
            time.sleep(0.2)
    return problems


def start(
    settings: Settings,
    *,
    chroma: bool = False,
    workers: int = 0,
    dashboard: bool = False,
    timeout: float = START_TIMEOUT_S,
) -> list[str]:
    """Start mongo, redis (chroma, N workers, the dashboard) where they do not answer; the problems,
    empty when all are up. Workers and the dashboard start after the servers they need.

    First the umask becomes 077 (the children inherit it) and the data folder is created 0700 and tightened.
    """
    secure_process(_data_dir(settings))
    svcs = services(settings, workers)
    problems = _start([svcs["mongo"], svcs["redis"], *([svcs["chroma"]] if chroma else [])], timeout)
    apps = [svcs[f"worker-{i}"] for i in range(workers)] + ([svcs["dashboard"]] if dashboard else [])
    if apps and not problems:
        problems = _start(apps, timeout)
    if chroma and settings.chroma_host is None and not problems:
        log.info("facereg uses embedded Chroma unless FACEREG_CHROMA_HOST=127.0.0.1 is set")
    return problems


def _start(wanted: list[Service], timeout: float) -> list[str]:
    problems: list[str] = []
    pending: dict[Service, subprocess.Popen[bytes]] = {}
    for svc in wanted:
        outcome = _launch(svc)
        if isinstance(outcome, str):
            problems += [outcome] if outcome else []
        else:
            pending[svc] = outcome
    return problems + _wait_until_up(pending, timeout)


# --- stop ----------------------------------------------------------------------------------------


def _signal(pid: int, sig: signal.Signals) -> str:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        return f"not allowed to signal pid {pid}"
    return ""


def _wait_gone(targets: dict[Service, int], timeout: float) -> dict[Service, int]:
    """Those of `targets` still alive (and still ours) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = dict(targets)
    while alive and time.monotonic() < deadline:
        alive = {svc: pid for svc, pid in alive.items() if owned_pid(svc) == pid}
        if alive:
            time.sleep(0.1)
    return {svc: pid for svc, pid in alive.items() if owned_pid(svc) == pid}


def stop(settings: Settings, *, timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop what this tool started (SIGTERM, then SIGKILL); the problems, empty when all are down."""
    problems: list[str] = []
    targets: dict[Service, int] = {}
    for svc in services(settings).values():
        pid = owned_pid(svc)
        if pid is None:
            if svc.pid_file.exists():
                log.info("%s: removing stale pid file %s (its process is gone or not ours)", svc.name, svc.pid_file)
            _remove_pid_file(svc)
        elif problem := _signal(pid, signal.SIGTERM):
            problems.append(f"{svc.name}: {problem}")
        else:
            log.info("stopping %s (pid %d)", svc.name, pid)
            targets[svc] = pid
    stubborn = _wait_gone(targets, timeout)
    for svc, pid in stubborn.items():
        log.warning("%s (pid %d) ignored SIGTERM for %.0f s: sending SIGKILL", svc.name, pid, timeout)
        _signal(pid, signal.SIGKILL)
    survivors = _wait_gone(stubborn, 5.0)
    for svc in targets:
        if svc not in survivors:
            _remove_pid_file(svc)
    return problems + [f"{svc.name} (pid {pid}) is still running after SIGKILL" for svc, pid in survivors.items()]
