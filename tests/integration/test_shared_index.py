"""One index shared by every process of an install: a face enrolled by a worker is found by this process (the
dashboard's role) at once, and a person erased here is never returned by the worker, on the Chroma server (the
default) and on embedded Chroma. Both processes have searched before, so each holds the collection open and its
graph loaded: a stale cache would show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model.pipeline import FacePipeline
from services.config import Settings
from services.context import open_context
from services.registry.enrollment import ImageInput, enroll
from services.registry.erasure import erase_person
from services.registry.persons import PersonInput
from services.search.identification import identify_image
from tests.integration.conftest import isolated_settings, running_workers
from workers import payloads
from workers.client import TaskClient

Img = Callable[[str, int], Path]
GALLERY = "shared"


def _worker_identify(queue: TaskClient, photo: Path) -> dict[str, object]:
    tid = queue.submit("identify", payloads.from_path(photo), GALLERY)
    done = queue.wait([tid], timeout=120)[tid]
    assert done.state == "SUCCESS", done.error
    face: dict[str, object] = done.result["faces"][0]
    return face


@pytest.mark.parametrize("mode", ["server", "embedded"])
def test_an_enrolled_face_is_found_by_another_process_at_once_and_an_erased_one_never(
    mode: str, infra: Settings, tmp_path: Path, mfn: FacePipeline, lfw_image: Img
) -> None:
    settings = isolated_settings(infra, tmp_path, model="mobilefacenet", chroma_mode=mode)
    ctx = open_context(settings, mfn)
    colin = lfw_image("Colin_Powell", 1)
    enroll(ctx, PersonInput("Colin Powell", "cp"), [ImageInput(colin.name, colin.read_bytes())], GALLERY)
    tony_probe = lfw_image("Tony_Blair", 9)
    assert identify_image(ctx, tony_probe, GALLERY)[0].is_unknown  # this process has the collection open

    with running_workers(settings, 1, f"shared-{mode}"), TaskClient(settings) as queue:
        assert _worker_identify(queue, tony_probe)["identity"] == "unknown"  # and so has the worker
        images = [payloads.from_path(lfw_image("Tony_Blair", n)) for n in (1, 2)]
        tid = queue.submit("enroll", {"display_name": "Tony Blair", "external_id": "tb"}, images, GALLERY)
        enrolled = queue.wait([tid], timeout=180)[tid]
        assert enrolled.state == "SUCCESS" and enrolled.result["enrolled"] == 2, enrolled.error

        found = identify_image(ctx, tony_probe, GALLERY)[0]
        assert found.display_name == "Tony Blair", found.to_dict()
        tony = found.person_id
        assert tony is not None

        erase_person(ctx, tony)
        after = _worker_identify(queue, tony_probe)
        assert after["identity"] == "unknown" and after["person_id"] is None, after
        matches = after["matches"]
        assert isinstance(matches, list) and tony not in {m["person_id"] for m in matches}, matches
        # The worker still finds the person it did not lose.
        assert _worker_identify(queue, lfw_image("Colin_Powell", 2))["identity"] == "Colin Powell"
    assert tony not in {m.person_id for m in identify_image(ctx, tony_probe, GALLERY)[0].matches}
