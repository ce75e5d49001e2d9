"""What each local service is: where it answers, the program and arguments that start it here, its environment,
and where its files go (under `Settings.data_dir`: mongo/, redis/, chroma-server/, logs/, pid files in run/).

The facereg processes (Celery workers, the dashboard) are given the settings whole (services.config.settings_env),
never left to read other FACEREG_* variables from this process's environment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from model.errors import FaceregError
from scripts.supervisor.probes import chroma_answers, http_ok, mongo_answers, redis_answers
from scripts.supervisor.processes import alive
from services.config import REPO_ROOT, Settings, redact, settings_env

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
BIND_HOST = "127.0.0.1"
WORKER_APP = "workers.worker"  # the module `celery -A` loads: its app serves the install its settings name


class InfraError(FaceregError):
    """The settings do not describe usable local services (an address whose port cannot be read)."""


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
    # The FACEREG_* variables (secrets included, hence no repr) and any others it is started with.
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def startable(self) -> bool:
        return self.host in LOCAL_HOSTS


def data_dir(settings: Settings) -> Path:
    """The settings' data folder, absolute."""
    return settings.data_dir.expanduser().resolve()


def _host_port(url: str, default_port: int, setting: str) -> tuple[str | None, int]:
    parts = urlsplit(url)
    if "," in parts.netloc or parts.scheme in {"mongodb+srv", "rediss", "unix"}:
        return None, default_port
    try:
        return parts.hostname, parts.port or default_port
    except ValueError:
        raise InfraError(f"{setting}: cannot read a port in {redact(url)!r}") from None


# --- the servers ---------------------------------------------------------------------------------


def mongo_service(settings: Settings) -> Service:
    host, port = _host_port(settings.mongo_uri, 27017, "FACEREG_MONGO_URI")
    data = data_dir(settings)
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
    data = data_dir(settings)
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
    host = settings.chroma_host
    data = data_dir(settings)
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


# --- the facereg processes -----------------------------------------------------------------------


def worker_args(node: str, queues: Sequence[str] = ()) -> tuple[str, ...]:
    """`celery` arguments of one single-process worker named `node`. No queues: its install's own (its app
    names them after the settings it is given, see worker_env)."""
    only = ("-Q", ",".join(queues)) if queues else ()
    return (
        *("-A", WORKER_APP, "worker", *only, "--concurrency", "1", "--pool", "prefork"),
        *("-n", node, "--loglevel", "INFO", "--without-gossip", "--without-mingle"),
    )


def worker_env(settings: Settings, threads: int = 1) -> dict[str, str]:
    """A worker's variables: `settings` whole, and `threads` torch threads (default one: two busy processes
    with two threads each on two cores run up to 10x slower than with one)."""
    return {**settings_env(settings), "FACEREG_TORCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}


def worker_service(settings: Settings, index: int) -> Service:
    """One single-process Celery worker on the install's queues, one torch thread."""
    data = data_dir(settings)
    name = f"worker-{index}"
    return Service(
        name=name,
        address_key="url",
        address=settings.redis_url,
        host=BIND_HOST,
        port=0,
        program="celery",
        args=worker_args(f"local-{index}@%h"),
        workdir=REPO_ROOT,
        data_dir=data,
        install_hint="run scripts/bootstrap.sh (celery is in the project's virtualenv)",
        probe=partial(alive, data / "run" / f"{name}.pid", "celery"),
        env=tuple(worker_env(settings).items()),
    )


def dashboard_service(settings: Settings) -> Service:
    data = data_dir(settings)
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
        env=tuple(settings_env(settings).items()),
    )


# --- the catalogue -------------------------------------------------------------------------------


def worker_indexes(settings: Settings) -> list[int]:
    """The workers that have a pid file (running or stale)."""
    run = data_dir(settings) / "run"
    return sorted(int(p.stem.split("-")[1]) for p in run.glob("worker-*.pid") if p.stem.split("-")[1].isdigit())


def services(settings: Settings, workers: int = 0) -> dict[str, Service]:
    """Every service of these settings by name: the servers, the dashboard, `workers` workers and any other
    worker that has a pid file."""
    out = {
        "mongo": mongo_service(settings),
        "redis": redis_service(settings),
        "chroma": chroma_service(settings),
        "dashboard": dashboard_service(settings),
    }
    for i in sorted({*range(workers), *worker_indexes(settings)}):
        out[f"worker-{i}"] = worker_service(settings, i)
    return out
