"""Message fuzzing against a real Celery worker (real Redis, the MongoDB-protocol server, the real model).

Every task gets wrong types, NaN and infinities, negative and huge numbers, oversized strings and
payloads, missing and extra arguments: each message ends as one typed InvalidTaskMessage result,
nothing is written, and the same worker process then serves a real enroll and identify."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from services.config import Settings
from services.storage.db import connect
from services.storage.input_paths import OutsideInputRoots
from tests.integration.conftest import isolated_settings, running_workers
from workers import payloads
from workers.client import TaskClient
from workers.errors import InvalidTaskMessage
from workers.messages import TASKS

Img = Callable[[str, int], Path]
Message = tuple[str, tuple[Any, ...], dict[str, Any]]

BIG = "x" * 200_000  # a 200 KB string
B64_12MB = base64.b64encode(b"\0" * 9 * 1024 * 1024).decode()  # over the 8 MB inline limit
B64_20MB = "A" * (20 * 1024 * 1024)
PERSON = {"display_name": "Fuzz Target", "external_id": "fz-1", "consent": {"given": True, "note": ""}}
OPTIONS = {"multi_face": "error", "min_quality": 0.25}
TIME = "2026-11-02T08:00:00+00:00"
# What replaces one argument of a valid message: each is wrong for every argument of every task.
WRONG = (12345, float("nan"), float("inf"), -(10**30), BIG, ["not", "an", "object"])


@pytest.fixture(scope="module")
def fuzz_settings(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(infra, tmp_path_factory.mktemp("fuzz"), model="mobilefacenet")


@pytest.fixture(scope="module")
def queue(fuzz_settings: Settings) -> Iterator[TaskClient]:
    with TaskClient(fuzz_settings) as tasks:
        yield tasks


@pytest.fixture(scope="module")
def worker(fuzz_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    with running_workers(fuzz_settings, 1, "fuzz") as procs:
        yield procs[0]


@pytest.fixture(scope="module")
def db(fuzz_settings: Settings) -> Database[Any]:
    return connect(fuzz_settings.mongo_uri)


@pytest.fixture(scope="module")
def pool_pid(worker: subprocess.Popen[bytes], queue: TaskClient) -> int:
    return task_process(worker, queue)


def task_process(worker: subprocess.Popen[bytes], queue: TaskClient) -> int:
    """The pid of the worker's pool process, the one that runs the tasks (the worker itself still running)."""
    assert worker.poll() is None, "the worker died"
    stats = queue.app.control.inspect(timeout=5.0).stats() or {}
    assert len(stats) == 1, stats
    (pids,) = (s["pool"]["processes"] for s in stats.values())
    assert len(pids) == 1
    return int(pids[0])


def counts(db: Database[Any]) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in sorted(db.list_collection_names())}


SIGHTING = {
    "key": "door-1/run/7",
    "person_id": None,
    "source": "door-1",
    "gallery": "fuzz",
    "time": TIME,
    "similarity": 0.2,
    "run_id": "run",
    "track_id": 7,
    "first_frame": 10,
    "last_frame": 40,
    "first_seen": TIME,
    "last_seen": TIME,
    "embeddings": [[0.6, 0.8]],
}


def valid_messages(lfw_image: Img) -> dict[str, tuple[Any, ...]]:
    """One valid message per task (checked against its schema below): the fuzzing changes one thing each."""
    img = payloads.from_path(lfw_image("Tony_Blair", 1))
    root = str(lfw_image("Tony_Blair", 1).parents[1])
    return {
        "enroll": (PERSON, [img], "fuzz", OPTIONS, "fuzzer"),
        "bulk_register": ([{**PERSON, "images": [img]}], "fuzz", OPTIONS, "fuzzer"),
        "identify": (img, "fuzz", 5),
        "inspect": (img, "fuzz", "0123456789abcdef0123456789abcdef"),
        "verify": (img, img, "fuzz"),
        "search_batch": ([img], "fuzz", 5),
        "process_frames": ([img], "door-1", "fuzz", [TIME], 3),
        "recognise_chips": ([img], "fuzz", 3),
        "log_sightings": ([SIGHTING], 60.0),
        "gallery_evaluation": (root, f"{root}/split.csv", "fuzz", "job-1"),
        "evaluate": ({"kind": "folder", "root": root, "enroll_per_person": 1, "max_persons": 0}, "fuzz", "job-2"),
        "image_duplicates": ("fuzz",),
        "reindex": ("fuzz", "mobilefacenet", "torch"),
        "reconcile": ("fuzz",),
        "dedup_scan": ("fuzz", 0.5),
    }


def is_valid(task: str, args: tuple[Any, ...]) -> bool:
    try:
        TASKS[task].args.parse(task, args, {})
    except InvalidTaskMessage:
        return False
    return True


def fuzzed(valid: dict[str, tuple[Any, ...]]) -> list[tuple[Message, str]]:
    """(message, what its error must say) for every task: each argument replaced by each wrong value,
    nothing at all, one argument too many, an unknown keyword; then the known cases of the issue."""
    out: list[tuple[Message, str]] = []
    for task, args in valid.items():
        for i in range(len(args)):
            mutated = [(*args[:i], bad, *args[i + 1 :]) for bad in WRONG]
            out += [((task, m, {}), "") for m in mutated if not is_valid(task, m)]  # 12345 s is a fine cooldown
        out += [((task, (), {}), ": missing"), ((task, (*args, "extra"), {}), "takes at most")]
        out.append(((task, args, {"__proto__": BIG}), "__proto__: not expected"))
    img = valid["identify"][0]
    frames = valid["process_frames"]
    out += [
        (("enroll", ({**PERSON, "consent": {"given": "no"}}, [img]), {}), "person.consent.given"),
        (("enroll", ({**PERSON, "external_id": 7}, [img]), {}), "person.external_id"),
        (("enroll", ({**PERSON, "external_id": BIG}, [img]), {}), "at most 200 characters"),
        (("enroll", (PERSON, [img], "fuzz", {"multi_face": "bogus", "min_quality": 0.3}), {}), "options.multi_face"),
        (("enroll", (PERSON, [img], "fuzz", {"multi_face": "error", "min_quality": "-1"}), {}), "options.min_quality"),
        (("enroll", (PERSON, [img], "fuzz", {"multi_face": "error", "min_quality": -1}), {}), "options.min_quality"),
        (("enroll", (PERSON, [{"name": "big.png", "b64": B64_12MB}]), {}), "images[0].b64"),
        (("enroll", (PERSON, [{"name": "huge.png", "b64": B64_20MB}]), {}), "images[0].b64"),
        (("enroll", (PERSON, [img] * 65), {}), "at most 64"),
        (("identify", ("/etc/shadow",), {}), "image: Input should be an object"),
        (("identify", (img, "fuzz", -1), {}), "top_k"),
        (("identify", (img, "fuzz", "5"), {}), "top_k"),
        (("identify", ({"name": "x", "b64": B64_12MB},), {}), "image.b64"),
        (("search_batch", ([img] * 65,), {}), "at most 64"),
        (("process_frames", (*frames[:3], ["yesterday"]), {}), "times[0]"),
        (("process_frames", (*frames[:3], ["2026-11-02T08:00:00"]), {}), "UTC offset"),
        (("process_frames", ([img] * 257, "door-1"), {}), "at most 256"),
        (("dedup_scan", ("fuzz", float("nan")), {}), "finite"),
        (("dedup_scan", ("fuzz", float("-inf")), {}), "finite"),
        (("evaluate", ({"kind": "zip", "upload": BIG}, "fuzz"), {}), "expected tags"),
        (("reindex", ("fuzz", "no-such-model"), {}), "unknown model"),
    ]
    return out


def send(queue: TaskClient, task: str, args: tuple[Any, ...], kwargs: dict[str, Any], raw: bool) -> str:
    """Through the project's client, or as a foreign producer would (no client-side checks at all)."""
    if raw:
        return str(queue.app.send_task(f"workers.tasks.{task}", args=args, kwargs=kwargs).id)
    return queue.submit(task, *args, **kwargs)


def test_every_bad_message_is_a_typed_failure_and_writes_nothing(
    worker: subprocess.Popen[bytes],
    queue: TaskClient,
    pool_pid: int,
    db: Database[Any],
    fuzz_settings: Settings,
    lfw_image: Img,
) -> None:
    data_dir = fuzz_settings.data_dir
    valid = valid_messages(lfw_image)
    assert set(valid) == set(TASKS)
    for task, args in valid.items():  # each template is valid: every fuzzed message differs by one thing
        TASKS[task].args.parse(task, args, {})
    cases = fuzzed(valid)
    before = counts(db)
    started = time.monotonic()
    sent = {send(queue, *message, raw=n % 2 == 1): (message, expected) for n, (message, expected) in enumerate(cases)}
    done = queue.wait(list(sent), timeout=120)
    elapsed = time.monotonic() - started
    print(f"{len(cases)} bad messages answered in {elapsed:.1f} s")
    for tid, st in done.items():
        (task, _, _), expected = sent[tid]
        assert st.state == "FAILURE", (task, st.state, st.result)
        assert st.error_code == InvalidTaskMessage.code, (st.error_code, st.error)
        assert st.error is not None and st.error.startswith(f"{task}: "), st.error
        assert expected in st.error and "\n" not in st.error and len(st.error) < 1500, st.error
    assert counts(db) == before
    assert not list((data_dir / "images").rglob("*"))
    assert task_process(worker, queue) == pool_pid  # the same process, alive
    assert elapsed < 60


def test_a_refused_path_is_a_typed_failure_too(
    worker: subprocess.Popen[bytes], queue: TaskClient, pool_pid: int
) -> None:
    tid = queue.submit("identify", {"name": "shadow", "path": "/etc/shadow"}, "fuzz")
    st = queue.wait([tid], timeout=60)[tid]
    assert st.state == "FAILURE" and st.error_code == OutsideInputRoots.code, (st.error_code, st.error)
    with pytest.raises(OutsideInputRoots, match="/etc/shadow"):
        st.raise_error()
    assert task_process(worker, queue) == pool_pid


def test_the_same_worker_then_serves_real_work(
    worker: subprocess.Popen[bytes], queue: TaskClient, pool_pid: int, db: Database[Any], lfw_image: Img
) -> None:
    images = [payloads.from_path(lfw_image("Tony_Blair", n)) for n in (1, 2)]
    person = {"display_name": "Tony Blair", "external_id": "fz-tb", "consent": {"given": True, "note": "test"}}
    tid = queue.submit("enroll", person, images, "fuzz", OPTIONS, "fuzzer")
    enrolled = queue.wait([tid], timeout=180)[tid]
    assert enrolled.state == "SUCCESS", enrolled.error
    assert enrolled.result["enrolled"] == 2
    probe = payloads.from_bytes(lfw_image("Tony_Blair", 9).read_bytes(), "probe.jpg")
    tid = queue.submit("identify", probe, "fuzz", 3)
    found = queue.wait([tid], timeout=120)[tid]
    assert found.state == "SUCCESS", found.error
    assert found.result["faces"][0]["identity"] == "Tony Blair"
    assert db.persons.count_documents({}) == 1 and db.faces.count_documents({}) == 2
    stored = db.persons.find_one({"external_id": "fz-tb"})
    assert stored is not None and stored["consent"]["given"] is True
    assert task_process(worker, queue) == pool_pid
