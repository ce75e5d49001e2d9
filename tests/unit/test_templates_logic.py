"""Person templates: the maths, the services' scores equal to the offline ones, and every write path keeping the
templates true (on the fakes; tests/integration/test_templates.py runs the write paths on the real servers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.templates import combined_score, face_weights, person_template, score_persons
from services.context import ServiceContext
from services.dedup.duplicates import decide_review, review_id
from services.registry.consistency import reconcile, reindex
from services.registry.erasure import erase_face, erase_person
from services.registry.galleries import get_gallery
from services.search.identification import search_vectors
from services.storage.records import Face, utcnow
from services.storage.templates import template_collection
from tests.support.templates import assert_templates_true
from tests.unit.conftest import make_fake_context, unit_settings
from tests.unit.fakes import DIM, fake_pipeline
from tests.unit.test_identification_logic import ANN, BOB, CY, enroll_people


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_a_template_is_the_unit_weighted_mean_of_unit_faces() -> None:
    faces = np.array([[3.0, 0.0], [0.0, 1.0]], np.float32)  # lengths differ: each counts by its weight only
    np.testing.assert_allclose(person_template(faces, [1.0, 1.0]), unit(np.array([1.0, 1.0])), atol=1e-6)
    np.testing.assert_allclose(person_template(faces, [3.0, 1.0]), unit(np.array([3.0, 1.0])), atol=1e-6)
    np.testing.assert_allclose(person_template(faces[:1], [0.2]), [1.0, 0.0], atol=1e-6)
    with pytest.raises(ValueError):
        person_template(faces, [1.0, 0.0])


def test_face_weights_are_the_quality_floored() -> None:
    np.testing.assert_allclose(face_weights([0.0, 0.5, 1.5, float("nan")]), [0.05, 0.5, 1.0, 0.05])


def test_scores_mix_the_template_and_the_best_face() -> None:
    faces = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], np.float32)
    query = np.array([[1.0, 0.0]], np.float32)
    for w in (0.0, 0.3, 1.0):
        persons, scores = score_persons(query, faces, ["a", "a", "b"], [1.0, 1.0, 1.0], w)
        assert persons == ["a", "b"]
        template_a = unit(faces[0] + faces[1]) @ query[0]
        np.testing.assert_allclose(scores[0], [w * template_a + (1 - w) * 1.0, 0.0], atol=1e-6)
    assert float(combined_score(0.5, 0.9, 0.25)) == pytest.approx(0.8)


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_the_services_score_persons_as_the_offline_evaluation_does(tmp_path: Path, weight: float) -> None:
    ctx = make_fake_context(unit_settings(tmp_path, template_weight=weight))
    ids = enroll_people(ctx, {ANN: 4, BOB: 2, CY: 1, 90: 3, 120: 2})
    gallery = get_gallery(ctx, "default")
    faces = [Face.from_doc(d) for d in ctx.db.faces.find()]
    rng = np.random.default_rng(0)
    centres = [ctx.pipeline.embedder.centre(i) for i in ids]  # type: ignore[attr-defined]
    queries = np.stack([unit(c + 0.5 * rng.standard_normal(c.shape)) for c in centres]).astype(np.float32)
    persons, scores = score_persons(
        queries,
        np.stack([f.vector for f in faces]),
        [f.person_id for f in faces],
        [f.quality["score"] for f in faces],
        weight,
    )
    for row, hits in zip(scores, search_vectors(ctx, gallery, queries, top_k=3), strict=True):
        best = np.argsort(-row)[:3]
        assert [h.person_id for h in hits] == [persons[j] for j in best]
        np.testing.assert_allclose([h.similarity for h in hits], row[best], atol=1e-5)


def test_every_write_path_keeps_the_templates_true(fake_context: ServiceContext) -> None:
    ctx = fake_context
    ids = enroll_people(ctx, {ANN: 3, BOB: 2, CY: 2})
    assert len(assert_templates_true(ctx, "default")) == 3
    ann_face = ctx.db.faces.find_one({"person_id": ids[ANN]})
    erase_face(ctx, ann_face["_id"])
    assert_templates_true(ctx, "default")
    # A merge: Cy's faces move to Bob; Cy has no template left, Bob's is the mean of the four.
    rid = review_id("default", ids[BOB], ids[CY])
    ctx.db.dedup_reviews.insert_one(
        {
            "_id": rid,
            "gallery": "default",
            "person_ids": sorted([ids[BOB], ids[CY]]),
            "status": "open",
            "similarity": 0.9,
            "face_ids": ["a", "b"],
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
    )
    decide_review(ctx, rid, "merge", "admin", keep_person=ids[BOB])
    assert set(assert_templates_true(ctx, "default")) == {ids[ANN], ids[BOB]}
    erase_person(ctx, ids[ANN])
    assert set(assert_templates_true(ctx, "default")) == {ids[BOB]}
    old = get_gallery(ctx, "default")
    reindex(ctx, "default", fake_pipeline(model="other-model"))
    new = get_gallery(ctx, "default")
    assert new.collection != old.collection and ctx.index.count(template_collection(old.collection)) == 0
    assert set(assert_templates_true(ctx, "default")) == {ids[BOB]}


def test_reconcile_repairs_missing_stale_and_orphan_templates(fake_context: ServiceContext) -> None:
    ctx = fake_context
    ids = enroll_people(ctx, {ANN: 2, BOB: 2, CY: 1})
    name = template_collection(get_gallery(ctx, "default").collection)
    ctx.index.delete(name, [ids[ANN]])  # missing
    ctx.index.upsert(name, [ids[BOB]], np.ones((1, DIM), np.float32), [ids[BOB]])  # stale
    ctx.index.upsert(name, ["gone-person"], np.ones((1, DIM), np.float32), ["gone-person"])  # orphan
    assert reconcile(ctx, "default").templates_repaired == 3
    assert_templates_true(ctx, "default")
    assert reconcile(ctx, "default").repaired == 0
