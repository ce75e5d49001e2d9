"""The task API's example program (docs/examples/identify_client.py) run as a foreign client runs it: by a Python
that cannot import facereg (isolated mode, no site processing: only the packages of site-packages, not the
editable install of this repository), against a real worker on a real LFW photo."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.config import Settings
from tests.integration.conftest import isolated_settings, running_workers
from workers import docs, payloads
from workers.client import TaskClient

Img = Callable[[str, int], Path]
FACEREG_PACKAGES = ("model", "services", "workers", "dashboard", "scripts")
# `python -I -S -c BOOT SITE_PACKAGES SCRIPT ARGS...`: SITE_PACKAGES on the path without its .pth files, then SCRIPT.
BOOT = (
    "import runpy, sys; sys.path.append(sys.argv[1]); del sys.argv[:2]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.fixture(scope="module")
def api_settings(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(infra, tmp_path_factory.mktemp("api"), model="mobilefacenet")


@pytest.fixture(scope="module")
def enrolled(api_settings: Settings, lfw_image: Img) -> Iterator[Settings]:
    """One worker, and Tony Blair enrolled in the gallery "api" through it."""
    with running_workers(api_settings, 1, "api"), TaskClient(api_settings) as queue:
        person = {"display_name": "Tony Blair", "external_id": "api-tb"}
        images = [payloads.from_path(lfw_image("Tony_Blair", n)) for n in (1, 2)]
        tid = queue.submit("enroll", person, images, "api")
        done = queue.wait([tid], timeout=180)[tid]
        assert done.state == "SUCCESS" and done.result["enrolled"] == 2, done.error
        yield api_settings


def foreign_python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    site = sysconfig.get_paths()["purelib"]
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", BOOT, site, *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_foreign_python_cannot_import_facereg(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import importlib.util, celery\n"
        f"print([m for m in {FACEREG_PACKAGES!r} if importlib.util.find_spec(m) is not None])\n"
    )
    done = foreign_python(str(probe), cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


def test_the_example_program_identifies_a_photo_through_a_real_worker(
    enrolled: Settings, lfw_image: Img, tmp_path: Path
) -> None:
    photo = lfw_image("Tony_Blair", 9)
    args = (str(docs.EXAMPLE), enrolled.redis_url, enrolled.install, str(photo), "--gallery", "api", "--top-k", "3")
    done = foreign_python(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["image"] == photo.name and result["faces"][0]["identity"] == "Tony Blair", result
    assert len(result["faces"][0]["matches"]) <= 3


def test_the_example_program_reads_a_failure_as_its_code(enrolled: Settings, tmp_path: Path) -> None:
    junk = tmp_path / "notes.jpg"
    junk.write_bytes(b"not a photo at all")
    for gallery, code in (("api", "invalid_image"), ("nobody-here", "not_found")):
        args = (str(docs.EXAMPLE), enrolled.redis_url, enrolled.install, str(junk), "--gallery", gallery)
        done = foreign_python(*args, cwd=tmp_path)
        assert done.returncode == 1, done.stdout
        assert done.stderr.startswith(f"error: {code}: "), done.stderr[-3000:]
