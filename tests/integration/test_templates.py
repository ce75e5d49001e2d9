"""Person templates on the real servers (MongoDB protocol + embedded Chroma): every write path keeps each template
the quality-weighted mean of the person's remaining faces, and a crash between the faces and the template is
repaired by reconcile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model.pipeline import FacePipeline
from services.config import Settings
from services.context import ServiceContext, open_context
from services.dedup.duplicates import decide_review, open_reviews, scan_identity_candidates
from services.engine import build_pipeline
from services.registry.consistency import reconcile, reindex
from services.registry.enrollment import ImageInput, enroll
from services.registry.erasure import erase_face, erase_person
from services.registry.galleries import get_gallery
from services.registry.persons import PersonInput
from services.search.identification import identify_image
from services.storage.faults import CRASH_EXIT_CODE
from services.storage.templates import template_collection
from tests.integration.conftest import isolated_settings
from tests.integration.test_consistency import images, run_child
from tests.support.templates import assert_templates_true

Img = Callable[[str, int], Path]


def add(ctx: ServiceContext, lfw_image: Img, name: str, external: str, folder: str, photos: tuple[int, ...]) -> str:
    shots = [ImageInput(lfw_image(folder, n).name, lfw_image(folder, n).read_bytes()) for n in photos]
    result = enroll(ctx, PersonInput(name, external), shots)
    assert result.person_id is not None and result.count("enrolled") == len(photos)
    return result.person_id


def test_enroll_remove_merge_erase_and_reindex_keep_every_template_true(
    ctx: ServiceContext, settings: Settings, lfw_image: Img
) -> None:
    blair = add(ctx, lfw_image, "Tony Blair", "e1", "Tony_Blair", (1, 2, 3))
    blair_too = add(ctx, lfw_image, "T. Blair", "e2", "Tony_Blair", (4, 5))
    powell = add(ctx, lfw_image, "Colin Powell", "e3", "Colin_Powell", (1, 2))
    assert set(assert_templates_true(ctx, "default")) == {blair, blair_too, powell}

    erase_face(ctx, ctx.db.faces.find_one({"person_id": blair})["_id"])
    assert set(assert_templates_true(ctx, "default")) == {blair, blair_too, powell}

    assert scan_identity_candidates(ctx, "default") == 1
    [review] = open_reviews(ctx, "default")
    decide_review(ctx, review.review.id, "merge", actor="admin", keep_person=blair)
    assert set(assert_templates_true(ctx, "default")) == {blair, powell}
    assert ctx.db.faces.count_documents({"person_id": blair}) == 4

    erase_person(ctx, powell)
    assert set(assert_templates_true(ctx, "default")) == {blair}

    old = get_gallery(ctx, "default")
    dlib = build_pipeline(settings, model="dlib")
    reindex(ctx, "default", dlib)
    ctx.use_pipeline(dlib)
    assert template_collection(old.collection) not in {c.name for c in ctx.index.client.list_collections()}
    assert set(assert_templates_true(ctx, "default")) == {blair}
    assert identify_image(ctx, lfw_image("Tony_Blair", 7))[0].person_id == blair


def test_a_crash_between_the_faces_and_the_template_is_repaired_by_reconcile(
    infra: Settings, tmp_path: Path, lfw: Path, mfn: FacePipeline
) -> None:
    settings = isolated_settings(infra, tmp_path)
    assert run_child(settings, "after_mongo_indexed", "enroll", *images(lfw)) == CRASH_EXIT_CODE
    ctx = open_context(settings, mfn)
    name = template_collection(get_gallery(ctx, "default").collection)
    assert ctx.index.count(name) == 0  # the faces are written and indexed, the template is not
    # Meanwhile the person is still found: their best face stands in for the missing template.
    [found] = identify_image(ctx, lfw / "images" / "Tony_Blair" / "Tony_Blair_0010.jpg")
    assert found.display_name == "Tony Blair"
    assert reconcile(ctx, "default").templates_repaired == 1
    [person] = assert_templates_true(ctx, "default")
    assert reconcile(ctx, "default").repaired == 0

    # An erasure dying after the faces are gone leaves a template of nobody: never a result, removed by reconcile.
    assert run_child(settings, "after_mongo_delete", "erase") == CRASH_EXIT_CODE
    assert ctx.index.ids(name) == {person}
    [face] = identify_image(ctx, lfw / "images" / "Tony_Blair" / "Tony_Blair_0010.jpg")
    assert face.matches == []
    assert reconcile(ctx, "default").templates_repaired == 1
    assert assert_templates_true(ctx, "default") == {}


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_identification_at_either_end_of_the_template_weight(
    infra: Settings, tmp_path: Path, mfn: FacePipeline, lfw_image: Img, weight: float
) -> None:
    ctx = open_context(isolated_settings(infra, tmp_path, template_weight=weight), mfn)
    blair = add(ctx, lfw_image, "Tony Blair", "e1", "Tony_Blair", (1, 2))
    add(ctx, lfw_image, "Colin Powell", "e2", "Colin_Powell", (1, 2))
    [face] = identify_image(ctx, lfw_image("Tony_Blair", 9))
    assert face.person_id == blair and [m.display_name for m in face.matches] == ["Tony Blair", "Colin Powell"]
