"""Two facereg installs on one Redis, each with its own database, data folder and worker: each install's tasks
run only on its own worker, and each install sees only its own worker."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

from services.config import Settings
from tests.integration.conftest import isolated_settings
from workers import client, local, payloads

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
            procs += local.start_workers(settings, 1, log_dir(settings), name=f"install-{site}")
        for settings in sites.values():
            client.use_settings(settings)
            assert local.wait_online(1, timeout=240) == 1, f"the worker of {settings.install} did not come online"
        yield sites
    finally:
        local.stop_workers(procs)


def log_dir(settings: Settings) -> Path:
    return settings.data_dir / "logs"


def worker_log(settings: Settings) -> str:
    return "".join(p.read_text(errors="replace") for p in log_dir(settings).glob("worker-*.log"))


def external_ids(settings: Settings) -> set[str]:
    mongo: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=5000) as mongo:
        return set(mongo.get_default_database().persons.distinct("external_id"))


def test_each_install_sees_only_its_own_worker(installs: dict[str, Settings]) -> None:
    for site, settings in installs.items():
        client.use_settings(settings)
        assert [name.split("-")[:2] for name in client.workers_online(timeout=2.0)] == [["install", site]]
        assert set(client.queue_lengths()) == {f"{settings.install}.embed", f"{settings.install}.io"}


def submit(settings: Settings, task: str, *args: object) -> str:
    client.use_settings(settings)
    return client.submit(task, *args)


def test_each_install_runs_its_tasks_on_its_own_worker(installs: dict[str, Settings], lfw_image: Img) -> None:
    sent: dict[str, list[str]] = {site: [] for site in installs}
    for n, person in enumerate(PEOPLE, start=1):  # interleaved: both installs' queues hold work at once
        image = payloads.from_bytes(lfw_image(person, 1).read_bytes(), f"{person}.jpg")
        for site, settings in installs.items():
            who = {"display_name": person, "external_id": f"{site}-{n}"}
            sent[site].append(submit(settings, "enroll", who, [image], "two"))
    enrolled = client.wait([tid for ids in sent.values() for tid in ids], timeout=300)
    scans = {site: submit(settings, "reconcile", "two") for site, settings in installs.items()}  # the io queues
    done = {**enrolled, **client.wait(list(scans.values()), timeout=120)}
    assert {st.state for st in done.values()} == {"SUCCESS"}, [st.error for st in done.values() if st.error]
    logs = {site: worker_log(settings) for site, settings in installs.items()}
    for site, settings in installs.items():
        other = next(s for s in installs if s != site)
        for tid in [*sent[site], scans[site]]:
            assert tid in logs[site] and tid not in logs[other], (site, tid)
        assert external_ids(settings) == {f"{site}-{n}" for n in range(1, len(PEOPLE) + 1)}


def test_the_client_can_go_back_to_a_broker_it_left(infra: Settings) -> None:
    """Switching brokers closes the old connection pools; coming back must open new ones, not find closed ones."""
    base = infra.redis_url.rsplit("/", 1)[0]
    for url in (f"{base}/3", f"{base}/4", f"{base}/3"):
        client.use_broker(url)
        assert client.workers_online(timeout=0.2) == {}
    client.use_broker(infra.redis_url)
