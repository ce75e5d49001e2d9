"""The worker queue for real: Celery worker processes on a real Redis, the MongoDB-protocol server,
no eager mode. Includes the fault tests: a worker killed with SIGKILL, and the broker restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model.pipeline import FacePipeline
from scripts.supervisor import launcher, supervisor
from scripts.supervisor.catalogue import services
from scripts.supervisor.probes import redis_answers
from services.config import Settings
from services.context import ServiceContext, open_context
from services.registry.bulk import BulkSummary, plan_folder
from services.registry.enrollment import EnrollOptions
from services.registry.galleries import get_gallery
from tests.integration.conftest import isolated_settings, run_python, running_workers
from workers import bulk, payloads
from workers.client import TaskClient
from workers.errors import QueueUnavailable

Img = Callable[[str, int], Path]


@pytest.fixture(scope="module")
def queue_settings(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A fresh database and data dir for this module."""
    return isolated_settings(infra, tmp_path_factory.mktemp("queue"), model="mobilefacenet")


@pytest.fixture(scope="module")
def queue(queue_settings: Settings) -> Iterator[TaskClient]:
    """This module's client of the task queue, on its settings' Redis and install."""
    with TaskClient(queue_settings) as tasks:
        yield tasks


@pytest.fixture(scope="module")
def workers(queue_settings: Settings) -> Iterator[list[subprocess.Popen[bytes]]]:
    with running_workers(queue_settings, 2, "test") as procs:
        yield procs


@pytest.fixture(scope="module")
def ctx(queue_settings: Settings, mfn: FacePipeline) -> ServiceContext:
    return open_context(queue_settings, mfn)


def people_folder(lfw: Path, dest: Path, people: list[str], per_person: int = 3) -> Path:
    for person in people:
        (dest / person).mkdir(parents=True, exist_ok=True)
        for img in sorted((lfw / "images" / person).glob("*.jpg"))[:per_person]:
            (dest / person / img.name).symlink_to(img)
    return dest


def lfw_people(lfw: Path, start: int, n: int) -> list[str]:
    with_three = sorted(p.name for p in (lfw / "images").iterdir() if len(list(p.glob("*.jpg"))) >= 4)
    return with_three[start : start + n]


def test_enroll_and_identify_through_a_worker(workers, queue: TaskClient, ctx: ServiceContext, lfw_image: Img) -> None:  # type: ignore[no-untyped-def]
    person = {"display_name": "Tony Blair", "external_id": "q-tb"}
    images = [payloads.from_path(lfw_image("Tony_Blair", n)) for n in (1, 2)]
    first = queue.wait([queue.submit("enroll", person, images, "queue-a")], timeout=180)
    result = next(iter(first.values()))
    assert result.state == "SUCCESS", result.error
    assert result.result["enrolled"] == 2
    again = next(iter(queue.wait([queue.submit("enroll", person, images, "queue-a")], timeout=180).values()))
    assert again.result["already_enrolled"] == 2 and again.result["enrolled"] == 0
    g = get_gallery(ctx, "queue-a")
    assert ctx.db.faces.count_documents({"gallery": "queue-a"}) == 2 == ctx.index.count(g.collection)
    inline = payloads.from_bytes(lfw_image("Tony_Blair", 9).read_bytes(), "probe.jpg")
    found = next(iter(queue.wait([queue.submit("identify", inline, "queue-a")], timeout=120).values()))
    assert found.result["faces"][0]["identity"] == "Tony Blair"
    stranger = payloads.from_path(lfw_image("Aaron_Peirsol", 1))
    unknown = next(iter(queue.wait([queue.submit("identify", stranger, "queue-a")], timeout=120).values()))
    assert unknown.result["faces"][0]["identity"] == "unknown"


def test_frames_become_attendance_events_with_a_cooldown(
    workers, queue: TaskClient, ctx: ServiceContext, lfw_image: Img
) -> None:  # type: ignore[no-untyped-def]
    images = [payloads.from_path(lfw_image("Colin_Powell", n)) for n in (1, 2)]
    queue.wait([queue.submit("enroll", {"display_name": "Colin Powell", "external_id": "q-cp"}, images, "queue-b")])
    frames = [payloads.from_path(lfw_image("Colin_Powell", n)) for n in (3, 4, 5)] + [
        payloads.from_path(lfw_image("Aaron_Peirsol", 1))
    ]
    times = [
        "2026-11-02T08:00:00+00:00",
        "2026-11-02T08:00:10+00:00",
        "2026-11-02T08:20:00+00:00",
        "2026-11-02T08:20:01+00:00",
    ]
    tid = queue.submit("process_frames", frames, "door-1", "queue-b", times)
    res = queue.wait([tid], timeout=180)[tid]
    assert res.state == "SUCCESS", res.error
    faces = [r["faces"][0] for r in res.result]
    assert [f["identity"] for f in faces] == ["Colin Powell"] * 3 + ["unknown"]
    logged = [f["event_id"] is not None for f in faces]
    assert logged == [True, False, True, True]  # the second frame is inside the 5-minute cooldown
    assert ctx.db.attendance.count_documents({"source": "door-1"}) == 3


def build_database(settings: Settings, folder: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    proc = run_python(settings, ["scripts/build_database.py", str(folder), "--gallery", "bulk", *extra])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_build_database_through_the_queue_then_resumes_without_changes(
    workers,
    queue_settings: Settings,
    ctx: ServiceContext,
    lfw: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    folder = people_folder(lfw, tmp_path / "people", lfw_people(lfw, 0, 6), per_person=4)
    out = str(tmp_path / "out")
    first = build_database(queue_settings, folder, "--enroll-per-person", "2", "--evaluate", "--queue", "--out", out)
    assert first["n_probes"] == 12 and first["top1"] >= 0.9
    assert first["summary"]["faces_mongo"] == first["summary"]["vectors_chroma"] >= 11
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["persons"] == 6
    second = build_database(queue_settings, folder, "--enroll-per-person", "2", "--inline", "--out", out)
    assert second["summary"] == {**first["summary"], "persons": 0}


def without_a_face(summary: BulkSummary, per_person: int) -> int:
    """Persons all of whose photos were rejected: no record is created for them."""
    return sum(n == per_person for n in Counter(r.person for r in summary.rejections).values())


def test_a_worker_killed_mid_run_loses_nothing(
    workers, queue: TaskClient, ctx: ServiceContext, lfw: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = people_folder(lfw, tmp_path / "kill", lfw_people(lfw, 10, 16), per_person=2)
    plans = plan_folder(folder, "killtest", 2)
    victim = workers[0]

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ctx.db.faces.count_documents({"gallery": "killtest"}) < 4:
            time.sleep(0.2)
        os.killpg(victim.pid, signal.SIGKILL)  # the worker and its child, mid-task

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    started = time.monotonic()
    summary = bulk.register(ctx, plans, "killtest", EnrollOptions("largest", 0.25), chunk=2, queue=queue, timeout=240)
    killer.join()
    elapsed = time.monotonic() - started
    assert victim.poll() is not None  # it really died
    assert summary.failures == [] and summary.persons == 16 - without_a_face(summary, 2)
    g = get_gallery(ctx, "killtest")
    faces = ctx.db.faces.count_documents({"gallery": "killtest"})
    assert faces == summary.faces_enrolled + summary.already_enrolled == ctx.index.count(g.collection)
    assert faces == 32 - sum(summary.rejected.values())
    assert elapsed < 120  # the lost task came back within the visibility timeout (30 s) plus a sweep
    workers[0] = launcher.start_workers(ctx.settings, 1, ctx.settings.data_dir / "logs", name="test-restarted")[0]


def test_a_broker_restart_mid_run_loses_nothing(
    workers,
    queue: TaskClient,
    infra: Settings,
    ctx: ServiceContext,
    lfw: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    folder = people_folder(lfw, tmp_path / "broker", lfw_people(lfw, 30, 16), per_person=2)
    plans = plan_folder(folder, "brokertest", 2)
    outcome: dict[str, object] = {}

    def run() -> None:
        opts = EnrollOptions("largest", 0.25)
        outcome["summary"] = bulk.register(ctx, plans, "brokertest", opts, chunk=2, queue=queue, timeout=300)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 120
    while ctx.db.faces.count_documents({"gallery": "brokertest"}) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = supervisor.owned_pid(services(infra)["redis"])
    assert pid is not None
    os.kill(pid, signal.SIGTERM)  # mid-run; appendonly keeps what was queued
    while redis_answers(infra.redis_url):
        time.sleep(0.1)
    with pytest.raises(QueueUnavailable, match="does not answer"):
        queue.submit("reconcile", "brokertest")  # a submission while it is down: a clear error
    time.sleep(3)
    assert supervisor.start(infra) == []
    runner.join()
    summary = outcome["summary"]
    assert isinstance(summary, BulkSummary)
    assert summary.failures == [] and summary.persons == 16 - without_a_face(summary, 2)
    g = get_gallery(ctx, "brokertest")
    faces = ctx.db.faces.count_documents({"gallery": "brokertest"})
    assert faces == ctx.index.count(g.collection) == 32 - sum(summary.rejected.values())
    assert ctx.db.persons.count_documents({"external_id": {"$regex": "^brokertest/"}}) == summary.persons
