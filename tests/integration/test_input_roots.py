"""Workers read files only under their input roots (FACEREG_INPUT_ROOTS), and carry any file name.

One real Celery worker whose only root is this module's `in` folder: host files, a symlink out and the
datasets are typed refusals; a real face under a non-UTF-8 name is enrolled and identified; evaluation
sources outside the roots are refused, and a split row leaving them is one failure, not a crash."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model.evaluation.protocols import DatasetError
from model.pipeline import FacePipeline
from services.config import Settings
from services.context import ServiceContext, open_context
from services.evaluation.gallery import evaluate_gallery
from services.evaluation.sources import rows_for
from services.storage.input_paths import ROOTS_SETTING, InputRefused, OutsideInputRoots
from tests.integration.conftest import isolated_settings, running_workers
from workers import payloads
from workers.client import TaskClient, TaskStatus

Img = Callable[[str, int], Path]
NON_UTF8 = b"Tony_Blair_caf\xe9.jpg"


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return (tmp_path_factory.mktemp("roots") / "in").resolve()


@pytest.fixture(scope="module")
def roots_settings(infra: Settings, inbox: Path) -> Settings:
    """Only `inbox` may be read: not the datasets, not the test's other folders."""
    inbox.mkdir()
    return isolated_settings(infra, inbox.parent, model="mobilefacenet", input_roots=[inbox])


@pytest.fixture(scope="module")
def worker(roots_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    with running_workers(roots_settings, 1, "roots") as procs:
        yield procs[0]


@pytest.fixture(scope="module")
def roots_ctx(roots_settings: Settings, mfn: FacePipeline) -> ServiceContext:
    return open_context(roots_settings, mfn)


@pytest.fixture(scope="module")
def queue(roots_settings: Settings) -> Iterator[TaskClient]:
    with TaskClient(roots_settings) as tasks:
        yield tasks


def run(queue: TaskClient, task: str, *args: object) -> TaskStatus:
    tid = queue.submit(task, *args)
    return queue.wait([tid], timeout=180)[tid]


def copy_in(src: Path, inbox: Path, name: bytes) -> Path:
    dest = inbox / Path(name.decode("utf-8", "surrogateescape"))
    shutil.copyfile(src, dest)
    return dest


def test_a_worker_refuses_files_outside_its_roots_and_carries_on(
    worker: subprocess.Popen[bytes], queue: TaskClient, inbox: Path, lfw_image: Img
) -> None:
    (inbox / "out.jpg").symlink_to(lfw_image("Aaron_Peirsol", 1))  # a real face, but outside the roots
    refused = [
        {"path": "/etc/shadow"},
        {"path": "/proc/self/environ"},
        {"path": str(inbox / "out.jpg")},
        payloads.from_path(lfw_image("Aaron_Peirsol", 2)),
        {"path": str(inbox / ".." / ".." / "etc" / "passwd")},
    ]
    for image in refused:
        st = run(queue, "identify", image, "roots")
        assert st.state == "FAILURE" and st.error is not None, image
        assert st.error_code == OutsideInputRoots.code and ROOTS_SETTING in st.error, st.error
    fifo = inbox / "pipe.jpg"
    os.mkfifo(fifo)
    st = run(queue, "identify", {"path": str(fifo)}, "roots")  # would block a worker that opened it
    assert st.state == "FAILURE" and st.error_code == InputRefused.code, st.error
    assert worker.poll() is None
    inline = payloads.from_bytes(lfw_image("Aaron_Peirsol", 1).read_bytes(), "ap.jpg")
    ok = run(queue, "enroll", {"display_name": "Aaron Peirsol", "external_id": "roots-ap"}, [inline], "roots-a")
    assert ok.state == "SUCCESS" and ok.result["enrolled"] == 1, ok.error  # the worker still serves valid tasks


def test_a_non_utf8_named_face_is_enrolled_and_identified(
    worker: subprocess.Popen[bytes], queue: TaskClient, roots_ctx: ServiceContext, inbox: Path, lfw_image: Img
) -> None:
    face = copy_in(lfw_image("Tony_Blair", 1), inbox, NON_UTF8)
    probe = copy_in(lfw_image("Tony_Blair", 2), inbox, b"probe_\xff.jpg")
    image = payloads.from_path(face)
    assert "path_b64" in image and image["name"] == "Tony_Blair_caf\\xe9.jpg"
    person = {"display_name": "Tony Blair", "external_id": "roots-tb"}
    st = run(queue, "enroll", person, [image, {"name": "shadow", "path": "/etc/shadow"}], "roots")
    assert st.state == "SUCCESS", st.error
    assert st.result["enrolled"] == 1 and st.result["rejected"] == 1
    by_name = {i["name"]: i for i in st.result["images"]}
    assert by_name["Tony_Blair_caf\\xe9.jpg"]["status"] == "enrolled"
    assert by_name["shadow"]["code"] == "outside_input_roots" and ROOTS_SETTING in by_name["shadow"]["reason"]
    assert roots_ctx.db.faces.count_documents({"gallery": "roots"}) == 1
    found = run(queue, "identify", payloads.from_path(probe), "roots")
    assert found.state == "SUCCESS", found.error
    assert found.result["image"] == "probe_\\xff.jpg" and found.result["faces"][0]["identity"] == "Tony Blair"


def test_evaluation_sources_outside_the_roots_are_refused(
    worker: subprocess.Popen[bytes], queue: TaskClient, roots_ctx: ServiceContext, inbox: Path, lfw: Path
) -> None:
    for source in (
        {"kind": "csv", "root": str(inbox), "split_csv": str(lfw / "gallery_split.csv")},
        {"kind": "csv", "root": str(lfw), "split_csv": "/etc/passwd"},
        {"kind": "folder", "root": str(lfw / "images")},
    ):
        with pytest.raises(OutsideInputRoots, match=ROOTS_SETTING):
            rows_for(roots_ctx, source)
        st = run(queue, "evaluate", source, "eval-roots")
        assert st.state == "FAILURE" and st.error_code == OutsideInputRoots.code, st.error
    with pytest.raises(DatasetError, match="no such file"):
        rows_for(roots_ctx, {"kind": "csv", "root": str(inbox), "split_csv": str(inbox / "missing.csv")})


def test_split_rows_leaving_the_roots_are_failures_not_crashes(
    roots_ctx: ServiceContext, inbox: Path, lfw_image: Img
) -> None:
    split = inbox / "split"
    (split / "cp").mkdir(parents=True)
    for n in (1, 2):
        shutil.copyfile(lfw_image("Colin_Powell", n), split / "cp" / f"{n}.jpg")
    (split / "cp" / "out.jpg").symlink_to(lfw_image("Colin_Powell", 3))
    (split / "split.csv").write_text(
        "path,identity,role\n"
        "cp/1.jpg,Colin Powell,enroll\n"
        "../../../../../../etc/shadow,Colin Powell,enroll\n"
        "cp/2.jpg,Colin Powell,probe\n"
        "cp/out.jpg,Colin Powell,probe\n"
        "../../../../../../proc/self/environ,Colin Powell,probe\n"
    )
    root, rows = rows_for(roots_ctx, {"kind": "csv", "root": str(split), "split_csv": str(split / "split.csv")})
    result = evaluate_gallery(roots_ctx, root, rows, "eval-rows").report
    assert result["enrollment"]["enrolled"] == 1 and result["enrollment"]["rejected"] == 1
    assert result["n_probes"] == 3 and result["n_failed"] == 2 and result["top1"] == pytest.approx(1 / 3)
