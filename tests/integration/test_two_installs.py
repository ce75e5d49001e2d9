"""Two facereg installs on one Redis, each with its own database, data folder and worker: each install's tasks
run only on its own worker, and each install sees only its own worker."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pymongo
import pytest

from scripts.supervisor import launcher
from services.config import Settings
from tests.integration.conftest import isolated_settings
from workers import payloads
from workers.app import queue_names
from workers.client import TaskClient

pytestmark = pytest.mark.slow  # two workers load their model
Img = Callable[[str, int], Path]
PEOPLE = ("Tony_Blair", "Colin_Powell", "Aaron_Peirsol")


@pytest.fixture(scope="module")
def installs(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Settings]]:
    """Installs `a-…` and `b-…`, one worker each (started together: their models load in parallel)."""
    run = uuid.uuid4().hex[:6]
    sites = {
        site: isolated_settings(
            infra, tmp_path_factory.mktemp(f"install-{site}"), model="mobilefacenet", install_name=f"{site}-{run}"
        )
        for site in ("a", "b")
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for site, settings in sites.items():
            procs += launcher.start_workers(settings, 1, log_dir(settings), name=f"install-{site}")
        for settings in sites.values():
            online = launcher.wait_online(settings, 1, timeout=240)
            assert online == 1, f"the worker of {settings.install} did not come online"
        yield sites
    finally:
        launcher.stop_workers(procs)


@pytest.fixture(scope="module")
def clients(installs: dict[str, Settings]) -> Iterator[dict[str, TaskClient]]:
    """A task client of each install, side by side in this process."""
    with ExitStack() as stack:
        yield {site: stack.enter_context(TaskClient(settings)) for site, settings in installs.items()}


def log_dir(settings: Settings) -> Path:
    return settings.data_dir / "logs"


def worker_log(settings: Settings) -> str:
    return "".join(p.read_text(errors="replace") for p in log_dir(settings).glob("worker-*.log"))


def external_ids(settings: Settings) -> set[str]:
    mongo: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=5000) as mongo:
        return set(mongo.get_default_database().persons.distinct("external_id"))


def test_each_install_sees_only_its_own_worker(installs: dict[str, Settings], clients: dict[str, TaskClient]) -> None:
    for site, queue in clients.items():
        assert [name.split("-")[:2] for name in queue.workers_online(timeout=2.0)] == [["install", site]]
        assert set(queue.queue_lengths()) == set(queue_names(installs[site].install))


def test_each_install_runs_its_tasks_on_its_own_worker(
    installs: dict[str, Settings], clients: dict[str, TaskClient], lfw_image: Img
) -> None:
    sent: dict[str, list[str]] = {site: [] for site in clients}
    for n, person in enumerate(PEOPLE, start=1):  # interleaved: both installs' queues hold work at once
        image = payloads.from_bytes(lfw_image(person, 1).read_bytes(), f"{person}.jpg")
        for site, queue in clients.items():
            who = {"display_name": person, "external_id": f"{site}-{n}"}
            sent[site].append(queue.submit("enroll", who, [image], "two"))
    done = {tid: st for site, queue in clients.items() for tid, st in queue.wait(sent[site], timeout=300).items()}
    scans = {site: queue.submit("reconcile", "two") for site, queue in clients.items()}  # the io queues
    done |= {scans[site]: queue.wait([scans[site]], timeout=120)[scans[site]] for site, queue in clients.items()}
    assert {st.state for st in done.values()} == {"SUCCESS"}, [st.error for st in done.values() if st.error]
    logs = {site: worker_log(settings) for site, settings in installs.items()}
    for site, settings in installs.items():
        other = next(s for s in installs if s != site)
        for tid in [*sent[site], scans[site]]:
            assert tid in logs[site] and tid not in logs[other], (site, tid)
        assert external_ids(settings) == {f"{site}-{n}" for n in range(1, len(PEOPLE) + 1)}


def test_clients_of_other_brokers_come_and_go(infra: Settings) -> None:
    """A client closed, then another on the same broker: kombu keeps a broker's pools for the process, and the
    new client must find them usable (a closed one would fail here)."""
    base = infra.redis_url.rsplit("/", 1)[0]
    for url in (f"{base}/3", f"{base}/4", f"{base}/3"):
        with TaskClient(infra.model_copy(update={"redis_url": url})) as queue:
            assert queue.workers_online(timeout=0.2) == {}
