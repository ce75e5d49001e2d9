"""The task API (workers.messages, workers.errors): what every caller sends passes; each kind of bad message is one
typed, one-line refusal; results fit their models; errors cross the queue as a code and a message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError

from model.errors import FaceregError, FaceTooSmall, InvalidImage, NoFace, TrainingError, error_info
from model.quality import FaceQuality
from model.zoo import ZOO
from services.attendance.streams import FrameResult
from services.config import Settings
from services.dedup.duplicates import DuplicateGroup
from services.registry.bulk import PersonPlan
from services.registry.consistency import ReconcileReport
from services.registry.enrollment import EnrollmentResult, ImageOutcome
from services.search.identification import FaceIdentity, Match
from workers import bulk, messages, payloads, tasks
from workers.app import install_conf, queue_names
from workers.client import TaskClient, TaskStatus
from workers.errors import ERRORS, InvalidTaskMessage, QueueUnavailable, TaskError, error_class, error_of
from workers.messages import (
    TASKS,
    BulkRegisterArgs,
    DedupScanArgs,
    EnrollArgs,
    EvaluateArgs,
    GalleryArgs,
    GalleryEvaluationArgs,
    IdentifyArgs,
    InspectArgs,
    ProcessFramesArgs,
    ReindexArgs,
    SearchBatchArgs,
    TaskArgs,
    VerifyArgs,
)

PATH = payloads.from_path("/data/people/Tony_Blair/Tony_Blair_0001.jpg")
INLINE = payloads.from_bytes(b"\xff\xd8 not really a jpeg", "upload.jpg")
OPTIONS = {"multi_face": "largest", "min_quality": 0.25}
PERSON = {"display_name": "Tony Blair", "external_id": "emp-42", "consent": {"given": True, "note": "form 12"}}
TIMES = ["2026-11-02T08:00:00+00:00", "2026-11-02T09:00:00+01:00"]
PID = "0123456789abcdef0123456789abcdef"


def parse(schema: type[TaskArgs], *args: Any, **kwargs: Any) -> TaskArgs:
    return schema.parse(schema.__name__, args, kwargs)


# As each caller sends them (dashboard pages, workers.bulk, scripts, tests).
VALID: list[tuple[type[TaskArgs], tuple[Any, ...], dict[str, Any]]] = [
    (EnrollArgs, (PERSON, [INLINE], "default", OPTIONS, "dashboard:ann"), {}),  # dashboard enroll
    (EnrollArgs, ({**PERSON, "external_id": None}, [INLINE, INLINE], "default", None, "dashboard"), {}),
    (EnrollArgs, ({"display_name": "Tony Blair", "person_id": PID}, [INLINE], "default", None, "dashboard"), {}),
    (EnrollArgs, ({"display_name": "Tony Blair", "external_id": "q-tb"}, [PATH, PATH], "queue-a"), {}),  # tests
    (EnrollArgs, (PERSON, [PATH]), {"options": {**OPTIONS, "duplicate_photos": "refuse", "min_quality": 1}}),
    (IdentifyArgs, (INLINE, "default", 3), {}),
    (IdentifyArgs, (PATH,), {"top_k": 100}),
    (InspectArgs, (INLINE, "default", None), {}),
    (InspectArgs, (INLINE, "default", PID), {}),
    (VerifyArgs, (INLINE, PATH, "default"), {}),
    (SearchBatchArgs, ([PATH] * 8, "bulk", 5), {}),
    (ProcessFramesArgs, ([PATH] * 2, "door-1", "queue-b", TIMES), {}),
    (ProcessFramesArgs, ([PATH], "gate-e2e", "default"), {}),
    (GalleryEvaluationArgs, ("/data/lfw", "/data/split.csv", "eval"), {}),
    (EvaluateArgs, ({"kind": "folder", "root": "/data/lfw", "enroll_per_person": 1, "max_persons": 0}, "eval"), {}),
    (EvaluateArgs, ({"kind": "gallery", "gallery": "default", "enroll_per_person": 2, "max_persons": 9}, "e-x"), {}),
    (EvaluateArgs, ({"kind": "csv", "root": "/data/lfw", "split_csv": "/data/s.csv"}, "eval"), {"job_id": "a-1"}),
    (GalleryArgs, ("default",), {}),
    (ReindexArgs, ("default", "mobilefacenet"), {}),
    (ReindexArgs, ("default", "auto", "onnx"), {}),
    (DedupScanArgs, ("default",), {}),
    (DedupScanArgs, ("default", -1), {}),
]


@pytest.mark.parametrize(("schema", "args", "kwargs"), VALID)
def test_what_callers_send_passes(schema: type[TaskArgs], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    parse(schema, *args, **kwargs)


def test_bulk_chunks_and_probe_batches_pass(tmp_path: Path) -> None:
    folder = tmp_path / "Tony_Blair"
    folder.mkdir()
    odd = folder / os.fsdecode(b"caf\xe9.jpg")  # a file name that is not UTF-8
    for p in (folder / "a.jpg", odd):
        p.write_bytes(b"x")
    plans = [PersonPlan("Tony_Blair", "bulk/Tony_Blair", [folder / "a.jpg", odd], [odd])]
    chunk = bulk.person_payloads(plans)
    assert "path_b64" in chunk[0]["images"][1]
    m = parse(BulkRegisterArgs, chunk, "bulk", OPTIONS, "build_database")
    assert isinstance(m, BulkRegisterArgs)
    assert m.persons[0].images[1].payload() == chunk[0]["images"][1]
    probes = [payloads.from_path(p, f"{plan.folder}/{p.name}") for plan in plans for p in plan.probes]
    parse(SearchBatchArgs, probes, "bulk", 5)


def test_parsed_values_are_what_the_services_take() -> None:
    m = parse(EnrollArgs, PERSON, [INLINE], "default", OPTIONS)
    assert isinstance(m, EnrollArgs) and m.options is not None
    person = m.person.to_input()
    assert person.consent is not None and person.consent.given is True and person.external_id == "emp-42"
    assert m.options.to_options().min_quality == 0.25 and m.images[0].payload() == INLINE
    frames = parse(ProcessFramesArgs, [PATH, PATH], "door-1", "rest", TIMES)
    assert isinstance(frames, ProcessFramesArgs) and frames.times is not None
    assert all(t.utcoffset() is not None for t in frames.times) and frames.times[1].hour == 9


def test_every_model_of_the_zoo_can_be_reindexed_to() -> None:
    for name in ZOO:
        parse(ReindexArgs, "default", name)


BIG = "x" * 200_000
B64_12MB = "A" * (12 * 1024 * 1024)
BAD: list[tuple[type[TaskArgs], tuple[Any, ...], dict[str, Any], str]] = [
    (EnrollArgs, ({**PERSON, "consent": {"given": "no"}}, [PATH]), {}, "consent.given: Input should be a valid bool"),
    (EnrollArgs, ({**PERSON, "consent": {"given": 1}}, [PATH]), {}, "person.consent.given"),
    (EnrollArgs, ({**PERSON, "external_id": 42}, [PATH]), {}, "person.external_id: Input should be a valid string"),
    (EnrollArgs, ({**PERSON, "external_id": BIG}, [PATH]), {}, "at most 200 characters (got a string of 200000"),
    (EnrollArgs, ({**PERSON, "external_id": ""}, [PATH]), {}, "person.external_id"),
    (EnrollArgs, ({**PERSON, "display_name": "   "}, [PATH]), {}, "person.display_name: is blank"),
    (EnrollArgs, ({"external_id": "x"}, [PATH]), {}, "a person needs a display_name"),
    (EnrollArgs, ({**PERSON, "person_id": "../../etc"}, [PATH]), {}, "person.person_id"),
    (EnrollArgs, ({**PERSON, "consent": {"given": True, "note": BIG}}, [PATH]), {}, "person.consent.note"),
    (EnrollArgs, ({**PERSON, "role": "admin"}, [PATH]), {}, "person.role: not expected"),
    (EnrollArgs, (PERSON, [PATH], "default", {"multi_face": "bogus", "min_quality": 0.2}), {}, "options.multi_face"),
    (EnrollArgs, (PERSON, [PATH], "default", {"multi_face": "error", "min_quality": "-1"}), {}, "options.min_quality"),
    (EnrollArgs, (PERSON, [PATH], "default", {"multi_face": "error", "min_quality": -1}), {}, "greater than or equal"),
    (EnrollArgs, (PERSON, [PATH], "default", {"multi_face": "error", "min_quality": float("nan")}), {}, "finite"),
    (EnrollArgs, (PERSON, [PATH], "default", {"multi_face": "error"}), {}, "options.min_quality: missing"),
    (EnrollArgs, (PERSON, ["/etc/shadow"]), {}, "images[0]: Input should be an object"),
    (EnrollArgs, (PERSON, PATH), {}, "images: Input should be a valid list"),
    (EnrollArgs, (PERSON, []), {}, "images: List should have at least 1 item"),
    (EnrollArgs, (PERSON, [PATH] * 65), {}, "images: List should have at most 64 items"),
    (EnrollArgs, (PERSON, [{"name": "a.jpg", "b64": B64_12MB}]), {}, "images[0].b64: String should have at most"),
    (EnrollArgs, (PERSON, [{**PATH, "b64": "AAAA"}]), {}, "images[0]: an image needs exactly one of"),
    (EnrollArgs, (PERSON, [{"name": "a.jpg"}]), {}, "(got none)"),
    (EnrollArgs, (PERSON, [{"path": "/x/\0.jpg"}]), {}, "NUL"),
    (EnrollArgs, (PERSON, [{"path": "/" + BIG}]), {}, "images[0].path"),
    (EnrollArgs, (PERSON, [{**PATH, "name": BIG}]), {}, "images[0].name"),
    (EnrollArgs, (PERSON, [{**PATH, "name": "caf\udce9.jpg"}]), {}, "images[0].name"),
    (EnrollArgs, (PERSON, [PATH], "Default Gallery"), {}, "gallery: gallery name 'Default Gallery' is not valid"),
    (EnrollArgs, (PERSON, [PATH], BIG), {}, "gallery: String should have at most 255"),
    (EnrollArgs, (PERSON, [PATH], None, None, 7), {}, "actor: Input should be a valid string"),
    (EnrollArgs, (PERSON, [PATH], None, None, "w", "extra"), {}, "takes at most 5 arguments"),
    (EnrollArgs, (PERSON,), {"person": PERSON, "images": [PATH]}, "person given both by position and by name"),
    (EnrollArgs, (PERSON,), {}, "images: missing"),
    (EnrollArgs, (PERSON, [PATH]), {"priority": 9}, "priority: not expected"),
    (BulkRegisterArgs, ([{**PERSON, "images": [PATH]}] * 65,), {}, "persons: List should have at most 64"),
    (BulkRegisterArgs, ([PERSON],), {}, "persons[0].images: missing"),
    (IdentifyArgs, (PATH, "default", -1), {}, "top_k: Input should be greater than or equal to 1 (got -1)"),
    (IdentifyArgs, (PATH, "default", "5"), {}, "top_k: Input should be a valid integer (got '5')"),
    (IdentifyArgs, (PATH, "default", 5.0), {}, "top_k: Input should be a valid integer"),
    (IdentifyArgs, (PATH, "default", True), {}, "top_k: Input should be a valid integer"),
    (IdentifyArgs, (PATH, "default", 10**30), {}, "top_k: Input should be less than or equal to 100"),
    (IdentifyArgs, ("/etc/shadow",), {}, "image: Input should be an object"),
    (IdentifyArgs, ({"path": 5},), {}, "image.path: Input should be a valid string"),
    (InspectArgs, (PATH, "default", 12), {}, "person_id"),
    (VerifyArgs, (PATH,), {}, "image_b: missing"),
    (SearchBatchArgs, ([PATH] * 65,), {}, "images: List should have at most 64"),
    (ProcessFramesArgs, ([PATH], "door-1", "default", ["yesterday"]), {}, "times[0]: not an ISO-8601 time"),
    (ProcessFramesArgs, ([PATH], "door-1", "default", ["2026-11-02T08:00:00"]), {}, "needs its UTC offset"),
    (ProcessFramesArgs, ([PATH], "door-1", "default", [1762070400]), {}, "times[0]: a time is an ISO-8601 string"),
    (ProcessFramesArgs, ([PATH], "door-1", "default", ["9999-12-31T23:59:59-23:59"]), {}, "out of range"),
    (ProcessFramesArgs, ([PATH], "door-1", "default", TIMES), {}, "times: 2 given for 1 frames"),
    (ProcessFramesArgs, ([PATH] * 257, "door-1"), {}, "frames: List should have at most 256"),
    (ProcessFramesArgs, ([PATH], BIG), {}, "source: String should have at most 200"),
    (ProcessFramesArgs, ([PATH], "door-1", None, None, 0), {}, "top_k"),
    (GalleryEvaluationArgs, ("/data", "/data/s.csv"), {}, "gallery: missing"),
    (EvaluateArgs, ({"kind": "zip", "upload": "x"}, "eval"), {}, "does not match any of the expected tags"),
    (EvaluateArgs, ({"kind": "folder", "root": "/d", "enroll_per_person": 0}, "eval"), {}, "enroll_per_person"),
    (EvaluateArgs, ({"kind": "folder", "root": "/d", "max_persons": -5}, "eval"), {}, "max_persons"),
    (EvaluateArgs, ({"kind": "csv", "root": "/d"}, "eval"), {}, "source.csv.split_csv: missing"),
    (EvaluateArgs, ({"kind": "folder", "root": "/d"}, "eval", "../job"), {}, "job_id"),
    (GalleryArgs, (), {}, "gallery: missing"),
    (GalleryArgs, (["default"],), {}, "gallery: Input should be a valid string"),
    (ReindexArgs, ("default", "resnet-9000"), {}, "model: unknown model"),
    (ReindexArgs, ("default", "mobilefacenet", "tpu"), {}, "runtime: unknown runtime"),
    (DedupScanArgs, ("default", float("nan")), {}, "threshold: Input should be a finite number"),
    (DedupScanArgs, ("default", float("-inf")), {}, "threshold: Input should be a finite number"),
    (DedupScanArgs, ("default", 1.5), {}, "threshold: Input should be less than or equal to 1"),
    (DedupScanArgs, ("default", "0.5"), {}, "threshold: Input should be a valid number"),
]


@pytest.mark.parametrize(("schema", "args", "kwargs", "problem"), BAD)
def test_each_bad_message_is_one_typed_line(
    schema: type[TaskArgs], args: tuple[Any, ...], kwargs: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidTaskMessage) as caught:
        parse(schema, *args, **kwargs)
    text = str(caught.value)
    assert text.startswith(f"{schema.__name__}: ") and problem in text, text
    assert "\n" not in text and len(text) < 1200  # no echo of large values


def test_many_problems_are_counted_not_listed() -> None:
    with pytest.raises(InvalidTaskMessage, match=r"and 9 more problem\(s\)$"):
        parse(EnrollArgs, PERSON, [{"name": 1, "path": 2}] * 6)


def test_every_task_checks_its_message_before_any_work() -> None:
    """No worker context exists in this process: a task that reached its work would fail otherwise."""
    names = {n.removeprefix("workers.tasks.") for n in tasks.app.tasks if n.startswith("workers.tasks.")}
    assert names == set(TASKS) and len(names) == 15
    for name in names:
        task = tasks.app.tasks[TASKS[name].celery_name]
        with pytest.raises(InvalidTaskMessage, match=f"^{name}: "):
            task.run(unexpected=BIG)
        with pytest.raises(TaskError) as caught:  # as the worker runs it: the error that crosses the queue
            task(unexpected=BIG)
        assert caught.value.args[0] == InvalidTaskMessage.code and caught.value.args[1].startswith(f"{name}: ")
        assert not issubclass(InvalidTaskMessage, task.autoretry_for)  # never retried
        assert task.typing is True  # Celery's own arity check accepts any message: the schema tells


def test_the_limits_follow_the_payload_limits() -> None:
    assert messages.MAX_B64 == payloads.b64_length(payloads.MAX_INLINE_BYTES) < len(B64_12MB)
    biggest = payloads.from_bytes(b"\0" * payloads.MAX_INLINE_BYTES, "max.png")
    parse(IdentifyArgs, biggest)


def subclasses(cls: type[FaceregError]) -> set[type[FaceregError]]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}


def test_every_typed_error_a_task_can_end_with_has_its_own_stable_code() -> None:
    codes = [cls.code for cls in ERRORS]
    assert len(set(codes)) == len(codes)
    assert all("code" in vars(cls) for cls in ERRORS)  # its own, not inherited: renaming a class keeps it
    raisable = {c for c in subclasses(FaceregError) if c.__module__.startswith(("model.", "services.", "workers."))}
    raisable.discard(TrainingError)  # training runs from scripts/train.py, never in a task
    assert raisable == set(ERRORS), raisable ^ set(ERRORS)  # the tasks import every module that raises one


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (FaceTooSmall("the face is 20 px wide"), "face_too_small"),
        (InvalidTaskMessage("identify: image: missing"), "invalid_task_message"),
        (ConnectionFailure("mongo went away"), "storage_unavailable"),
        (RedisConnectionError("redis went away"), "broker_unavailable"),
        (KeyError("bug"), "internal_error"),
    ],
)
def test_a_failure_crosses_the_queue_as_a_code_and_a_message(exc: Exception, code: str) -> None:
    backend = tasks.app.backend
    got, message = error_of(exc)
    stored = backend.prepare_exception(TaskError(got, message))  # what the result backend keeps
    assert stored == {"exc_type": "TaskError", "exc_message": (code, message), "exc_module": "workers.errors"}
    back_code, back_message = error_of(backend.exception_to_python(stored))  # as the client reads it
    status = TaskStatus("t-1", "FAILURE", None, error=back_message, error_code=back_code)
    assert (status.error_code, status.error) == (code, message) and "\n" not in message
    assert status.broker_lost is (code == QueueUnavailable.code)
    with pytest.raises(error_class(code), match=r"went away|bug|20 px|missing") as raised:
        status.raise_error()
    assert type(raised.value) is (type(exc) if isinstance(exc, FaceregError) else error_class(code))


def test_an_unknown_task_is_refused_before_the_broker() -> None:
    with pytest.raises(InvalidTaskMessage, match="no such task"):
        TaskClient(Settings(redis_url="redis://127.0.0.1:1/0")).submit("format_disk")


def test_results_are_checked_and_keep_their_shape() -> None:
    reindex = TASKS["reindex"]
    skipped = {"gallery": "g", "contract": "c-1", "reindexed": 0, "note": "already on this contract"}
    assert reindex.dump_result(skipped) == skipped  # no "from": null added
    done = {"gallery": "g", "from": "c-0", "contract": "c-1", "reindexed": 3}
    assert reindex.dump_result(done) == done
    with pytest.raises(ValidationError):
        reindex.dump_result({**done, "surprise": 1})  # a result the API does not describe
    no_face = {"name": "b.jpg", "error": error_info(NoFace("no face found")).to_dict(), "ranked": []}
    ranked = [{"name": "a.jpg", "error": None, "ranked": [["emp-1", 0.5]]}, no_face]
    assert TASKS["search_batch"].dump_result(ranked) == ranked
    with pytest.raises(ValidationError):  # an item's error is a code and a message
        TASKS["search_batch"].dump_result([{**no_face, "error": "NoFace: no face found"}])


def test_the_services_results_fit_the_result_models() -> None:
    """What the task bodies return, built by the services' own serialisers."""
    quality = FaceQuality(0.99, 120.0, 300.0, 5.0, 1.0, 0.9).to_dict()
    outcomes = [
        ImageOutcome("a.jpg", "enrolled", "", "f1", quality, ("looks like Bob",)),
        ImageOutcome("b.jpg", "rejected", "no face found", code="no_face"),
    ]
    enrolled = EnrollmentResult("p1", "Ann", "g", True, outcomes).to_dict()
    assert TASKS["enroll"].dump_result(enrolled) == enrolled
    face = FaceIdentity([1.0, 2.0, 3.0, 4.0], 0.8, [Match("p1", "Ann", 0.7, "f1")], "p1", "Ann", 0.7, 0.4)
    identified = {"image": "x.jpg", "faces": [face.to_dict()]}
    assert TASKS["identify"].dump_result(identified) == identified
    frames = [
        FrameResult(0, [{**face.to_dict(), "event_id": None}]).to_dict(),
        FrameResult(1, [], error_info(InvalidImage("not an image"))).to_dict(),
    ]
    assert frames[1]["error"] == {"code": "invalid_image", "message": "not an image"}
    assert TASKS["process_frames"].dump_result(frames) == frames
    report = ReconcileReport("g", 2, 2, 0, 0, 0, 0, 2).to_dict()
    assert TASKS["reconcile"].dump_result(report) == report
    groups = {"gallery": "g", "groups": [DuplicateGroup(["f1", "f2"], "f1", 0.99, 1).to_dict()]}
    assert TASKS["image_duplicates"].dump_result(groups) == groups


def test_queues_follow_the_task_table() -> None:
    conf = install_conf("site")
    assert [q.name for q in conf["task_queues"]] == queue_names("site") == ["site.embed", "site.io"]
    routes = {name: route["queue"] for name, route in conf["task_routes"].items()}
    assert routes == {spec.celery_name: f"site.{spec.queue}" for spec in TASKS.values()}
    io = {n for n, q in routes.items() if q == "site.io"}
    assert io == {"workers.tasks.reconcile", "workers.tasks.dedup_scan", "workers.tasks.log_sightings"}
