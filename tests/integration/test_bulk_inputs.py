"""build_database.py on a folder an unlucky operator (or an attacker) could hand it: file and folder names
that are not UTF-8, unreadable files, a symlink out of the input roots, files without a face, the same photo
under several persons. Inline and through one real worker: each bad file is one rejection with its reason,
its neighbours are enrolled, nothing stays pending, no person without a face, and the exit code says so."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from model.pipeline import FacePipeline
from services.config import Settings
from services.context import ServiceContext, open_context
from services.storage.faults import CRASH_EXIT_CODE
from services.storage.records import LEGACY_REASON_CODES
from tests.integration.conftest import isolated_settings, run_python, running_workers
from workers import payloads
from workers.client import TaskClient

Img = Callable[[str, int], Path]
ODD_FILE = os.fsdecode(b"bad\xff.jpg")  # not UTF-8: a valid photo of Colin Powell under that name
ODD_FOLDER = os.fsdecode(b"Jos\xe9")  # not UTF-8: a person folder
DUPLICATES = ("Dup_One", "Dup_Two")  # each holds Colin Powell's first photo again


@pytest.fixture(scope="module")
def bulk_settings(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The default input roots (the data folder and the datasets), not the whole test folder."""
    tmp = tmp_path_factory.mktemp("bulk")
    roots = [tmp / "data", *([infra.datasets] if infra.datasets else [])]
    return isolated_settings(infra, tmp, model="mobilefacenet", input_roots=roots)


@pytest.fixture(scope="module")
def ctx(bulk_settings: Settings, mfn: FacePipeline) -> ServiceContext:
    return open_context(bulk_settings, mfn)


@pytest.fixture(scope="module")
def worker(bulk_settings: Settings) -> Iterator[None]:
    with running_workers(bulk_settings, 1, "bulk-inputs"):
        yield


@pytest.fixture(scope="module")
def queue(bulk_settings: Settings) -> Iterator[TaskClient]:
    with TaskClient(bulk_settings) as tasks:
        yield tasks


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


@pytest.fixture(scope="module")
def folder(bulk_settings: Settings, lfw_image: Img, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<person>/<images> inside the data folder (an allowed input root), with a secret outside the roots."""
    root = bulk_settings.data_dir / "inbox" / "people"
    colin, odd = root / "Colin_Powell", root / ODD_FOLDER
    for d in (colin, odd, root / "No_Face", *(root / name for name in DUPLICATES)):
        d.mkdir(parents=True)
    for n in (1, 2):
        (colin / f"Colin_Powell_{n:04d}.jpg").write_bytes(lfw_image("Colin_Powell", n).read_bytes())
        (odd / f"{n}.jpg").write_bytes(lfw_image("Tony_Blair", n).read_bytes())
    (colin / ODD_FILE).write_bytes(lfw_image("Colin_Powell", 3).read_bytes())
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("not for the gallery")
    (colin / "shadow.jpg").symlink_to(secret)
    (root / "No_Face" / "notes.jpg").write_bytes(b"hello")
    (root / "No_Face" / "wall.jpg").write_bytes(jpeg(np.full((200, 200, 3), 180, np.uint8)))
    for name in DUPLICATES:
        (root / name / "photo.jpg").write_bytes(lfw_image("Colin_Powell", 1).read_bytes())
    return root


def build(settings: Settings, folder: Path, gallery: str, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    out = settings.data_dir / "reports" / gallery
    args = [str(folder), "--gallery", gallery, "--enroll-per-person", "0", "--out", str(out), *extra]
    return run_python(settings, ["scripts/build_database.py", *args], timeout=600, **env)


def report(settings: Settings, gallery: str) -> dict[str, Any]:
    return json.loads((settings.data_dir / "reports" / gallery / "report.json").read_text())


def codes(rejections: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(r["person"].split("/", 1)[1], r["image"]): r["code"] for r in rejections}


def store_as_before_codes(ctx: ServiceContext, gallery: str) -> None:
    """Rewrite the gallery's stored rejections as they were stored before they had codes: `Type: message`."""
    names = {code: name for name, code in LEGACY_REASON_CODES.items()}
    for d in ctx.db.rejections.find({"gallery": gallery}):
        old = {"reason": f"{names[d['code']]}: {d['reason']}"}
        ctx.db.rejections.update_one({"_id": d["_id"]}, {"$set": old, "$unset": {"code": ""}})


def assert_stored_consistently(ctx: ServiceContext, gallery: str) -> dict[str, int]:
    """Nothing pending, and every person of the gallery has a face: {display name: faces}."""
    assert ctx.db.faces.count_documents({"gallery": gallery, "vector_state": {"$ne": "indexed"}}) == 0
    persons = {d["_id"]: d["display_name"] for d in ctx.db.persons.find({"external_id": {"$regex": f"^{gallery}/"}})}
    faces = {
        name: ctx.db.faces.count_documents({"gallery": gallery, "person_id": pid}) for pid, name in persons.items()
    }
    assert all(faces.values()), faces
    return faces


def test_inline_each_bad_file_is_one_rejection_and_its_neighbours_are_enrolled(
    bulk_settings: Settings, ctx: ServiceContext, folder: Path
) -> None:
    proc = build(bulk_settings, folder, "inl", "--inline")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "incomplete: 3 image(s) rejected" in proc.stderr
    rep = report(bulk_settings, "inl")
    assert codes(rep["rejections"]) == {
        ("Colin_Powell", "shadow.jpg"): "outside_input_roots",  # the symlink out was never followed
        ("No_Face", "notes.jpg"): "invalid_image",
        ("No_Face", "wall.jpg"): "no_face",
    }
    assert rep["rejected"] == {"outside_input_roots": 1, "invalid_image": 1, "no_face": 1}
    assert sorted((d["person"], d["already_enrolled_for"]) for d in rep["duplicates"]) == [
        (f"inl/{name}", "Colin Powell") for name in DUPLICATES
    ]
    faces = assert_stored_consistently(ctx, "inl")
    assert faces == {"Colin Powell": 3, "Jos\\xe9": 2, "Dup One": 1, "Dup Two": 1}  # no person for No_Face
    odd = ctx.db.faces.find_one({"gallery": "inl", "source_name": "bad\\xff.jpg"})
    assert odd is not None and odd["vector_state"] == "indexed"
    assert ctx.db.rejections.count_documents({"gallery": "inl"}) == 3

    store_as_before_codes(ctx, "inl")  # the verdicts of an older version are read with their codes
    again = build(bulk_settings, folder, "inl", "--inline")  # resumes: nothing new, nothing doubled, same verdict
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr[-3000:]
    rerun = report(bulk_settings, "inl")
    assert (rerun["faces_enrolled"], rerun["skipped_before"], rerun["rejected_before"]) == (0, 7, 2)
    assert codes(rerun["rejections_before"]) == {
        ("No_Face", "notes.jpg"): "invalid_image",
        ("No_Face", "wall.jpg"): "no_face",
    }
    assert not any(r["reason"].startswith(("InvalidImage", "NoFace")) for r in rerun["rejections_before"])
    assert assert_stored_consistently(ctx, "inl") == faces
    assert ctx.db.rejections.count_documents({"gallery": "inl"}) == 3


def test_through_a_worker_with_strict_a_photo_of_another_person_is_refused(
    worker: None, bulk_settings: Settings, ctx: ServiceContext, folder: Path
) -> None:
    proc = build(bulk_settings, folder, "que", "--queue", "--strict")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rep = report(bulk_settings, "que")
    assert rep["n_failures"] == 0 and rep["duplicate_photos"] == 0
    assert codes(rep["rejections"]) == {
        ("Colin_Powell", "shadow.jpg"): "outside_input_roots",
        ("No_Face", "notes.jpg"): "invalid_image",
        ("No_Face", "wall.jpg"): "no_face",
        **{(name, "photo.jpg"): "duplicate_photo" for name in DUPLICATES},
    }
    assert {r["reason"] for r in rep["rejections"] if r["image"] == "photo.jpg"} == {
        "already enrolled for Colin Powell"
    }
    assert assert_stored_consistently(ctx, "que") == {"Colin Powell": 3, "Jos\\xe9": 2}


def enroll_task(
    queue: TaskClient, person: dict[str, str], images: list[payloads.ImagePayload], **options: object
) -> dict[str, Any]:
    opts = {"multi_face": "largest", "min_quality": 0.25, **options} if options else None
    tid = queue.submit("enroll", person, images, "tasks", opts)
    res = queue.wait([tid], timeout=120)[tid]
    assert res.state == "SUCCESS", res.error
    result: dict[str, Any] = res.result
    return result


def test_the_enroll_task_creates_no_person_for_refused_input_and_reports_a_photo_of_another(
    worker: None, queue: TaskClient, ctx: ServiceContext, lfw_image: Img, tmp_path: Path
) -> None:
    unreadable = [payloads.from_path(tmp_path / "missing.jpg"), payloads.from_bytes(b"not an image", "junk.jpg")]
    nobody = enroll_task(queue, {"display_name": "Nobody Here", "external_id": "nobody"}, unreadable)
    assert nobody["person_id"] is None and nobody["rejected"] == 2 and not nobody["person_created"]
    assert ctx.db.persons.count_documents({"external_id": "nobody"}) == 0

    photo = [payloads.from_path(lfw_image("Colin_Powell", 1))]
    assert enroll_task(queue, {"display_name": "Colin Powell", "external_id": "cp"}, photo)["enrolled"] == 1
    refused = enroll_task(queue, {"display_name": "Copy Cat", "external_id": "cc"}, photo, duplicate_photos="refuse")
    assert refused["images"][0]["code"] == "duplicate_photo"
    assert refused["images"][0]["reason"] == "already enrolled for Colin Powell"
    assert refused["person_id"] is None and ctx.db.persons.count_documents({"external_id": "cc"}) == 0
    warned = enroll_task(queue, {"display_name": "Copy Cat", "external_id": "cc"}, photo)
    assert (
        warned["enrolled"] == 1
        and "the same photo is already enrolled for Colin Powell" in warned["images"][0]["warnings"]
    )


def test_a_clean_folder_exits_0_and_a_crash_after_the_person_insert_is_finished_by_a_rerun(
    bulk_settings: Settings, ctx: ServiceContext, lfw_image: Img, tmp_path: Path
) -> None:
    clean = tmp_path / "clean" / "Tony_Blair"  # outside the roots: fine inline, the folder itself is read
    clean.mkdir(parents=True)
    for n in (3, 4):
        (clean / f"Tony_Blair_{n:04d}.jpg").symlink_to(lfw_image("Tony_Blair", n))  # into the datasets root
    crashed = build(bulk_settings, clean.parent, "clean", "--inline", FACEREG_CRASH_AT="after_person_insert")
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-3000:]
    assert ctx.db.persons.count_documents({"external_id": "clean/Tony_Blair"}) == 1
    assert ctx.db.faces.count_documents({"gallery": "clean"}) == 0  # the crash came before the faces
    proc = build(bulk_settings, clean.parent, "clean", "--inline")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert assert_stored_consistently(ctx, "clean") == {"Tony Blair": 2}
    assert ctx.db.persons.count_documents({"external_id": "clean/Tony_Blair"}) == 1


def test_misuse_is_one_line_and_exit_2(bulk_settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "people" / "Someone").mkdir(parents=True)
    (tmp_path / "a-file.txt").write_text("")
    people = str(tmp_path / "people")
    cases = {
        "does not exist": [str(tmp_path / "missing")],
        "is a file, not a folder": [str(tmp_path / "a-file.txt")],
        "--chunk: 0 must be": [people, "--chunk", "0"],
        "--enroll-per-person: -1 must be": [people, "--enroll-per-person", "-1"],
        "--max-persons: -5 must be": [people, "--max-persons", "-5"],
        "--min-images: 0 must be": [people, "--min-images", "0"],
        "--workers: -1 must be": [people, "--workers", "-1"],
        "FACEREG_INPUT_ROOTS=": [people, "--queue"],  # the folder is outside the roots: which one to add
    }
    with ThreadPoolExecutor(4) as pool:  # each child takes seconds to import
        procs = pool.map(lambda a: run_python(bulk_settings, ["scripts/build_database.py", *a], 120), cases.values())
        runs = dict(zip(cases, procs, strict=True))
    for expected, proc in runs.items():
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], (expected, proc.stderr[-2000:])
    assert people in runs["FACEREG_INPUT_ROOTS="].stderr
