"""1:N identification's logic on the fakes: open-set decisions, one entry per person, Top-K, contracts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.errors import NoFace
from services.context import ServiceContext
from services.errors import ContractMismatch, NotFound
from services.registry.enrollment import ImageInput, enroll
from services.registry.galleries import ensure_gallery, get_gallery, set_thresholds
from services.registry.persons import PersonInput
from services.search.identification import identify_image, rank_primary_faces, search_vectors
from tests.unit.conftest import make_fake_context, unit_settings
from tests.unit.fakes import FaceSpec, FakeEmbedder, blank, fake_pipeline, photo, portrait

ANN, BOB, CY, STRANGER = 3, 40, 77, 500


def enroll_people(ctx: ServiceContext, photos_each: dict[int, int]) -> dict[int, str]:
    """Persons of these fake identities, each with that many photos; their person ids."""
    ids = {}
    for identity, n in photos_each.items():
        images = [ImageInput(f"{identity}-{v}.png", portrait(identity, v)) for v in range(n)]
        result = enroll(ctx, PersonInput(f"person {identity}", f"ext-{identity}"), images)
        assert result.count("enrolled") == n and result.person_id is not None
        ids[identity] = result.person_id
    return ids


def test_a_known_person_is_found_and_a_stranger_is_unknown(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 2, BOB: 2})
    [known] = identify_image(fake_context, portrait(ANN, 9))
    assert known.person_id == ids[ANN] and known.display_name == f"person {ANN}"
    assert known.similarity >= known.threshold == 0.5 and known.matches[0].similarity == known.similarity

    [stranger] = identify_image(fake_context, portrait(STRANGER))
    assert stranger.is_unknown and stranger.display_name is None and stranger.similarity < 0.5
    assert stranger.to_dict()["identity"] == "unknown"
    # The nearest persons are still listed, best first, under the threshold.
    assert {m.person_id for m in stranger.matches} == set(ids.values())
    assert stranger.matches[0].similarity == stranger.similarity


def test_the_gallery_threshold_decides(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 1})
    [face] = identify_image(fake_context, portrait(ANN, 4))
    assert face.person_id == ids[ANN] and face.similarity < 0.999
    set_thresholds(fake_context, "default", identify=0.999)
    [again] = identify_image(fake_context, portrait(ANN, 4))
    assert again.is_unknown and again.threshold == 0.999
    assert again.matches[0].person_id == ids[ANN] and again.similarity == pytest.approx(face.similarity)


def test_every_face_of_the_image_is_identified(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 1, BOB: 1})
    group = photo(
        FaceSpec(ANN, 7, x=16, y=64), FaceSpec(BOB, 7, x=176, y=64), FaceSpec(STRANGER, x=336, y=64), size=(256, 480)
    )
    faces = sorted(identify_image(fake_context, group), key=lambda f: f.box[0])
    assert [f.person_id for f in faces] == [ids[ANN], ids[BOB], None]
    assert [f.box for f in faces] == [[16, 64, 144, 192], [176, 64, 304, 192], [336, 64, 464, 192]]
    with pytest.raises(NoFace):
        identify_image(fake_context, blank())


def test_a_person_counts_once_ranked_by_their_best_face(tmp_path: Path) -> None:
    """With template weight 0 (the best face alone); tests/unit/test_templates_logic.py covers the others."""
    fake_context = make_fake_context(unit_settings(tmp_path, template_weight=0.0))
    ids = enroll_people(fake_context, {ANN: 6, BOB: 1, CY: 1})
    gallery = get_gallery(fake_context, "default")
    embedder = fake_context.pipeline.embedder
    assert isinstance(embedder, FakeEmbedder)
    # Between Ann and Bob, nearer Bob: Ann's six faces are all close, Bob's one face is closer.
    query = 0.6 * embedder.centre(ANN) + 0.8 * embedder.centre(BOB)
    query = (query / np.linalg.norm(query)).astype(np.float32)[None, :]
    [hits] = search_vectors(fake_context, gallery, query, top_k=3)
    assert [h.person_id for h in hits] == [ids[BOB], ids[ANN], ids[CY]]
    faces = fake_context.index.query(gallery.collection, query, 100)[0]
    best_of_ann = max((h for h in faces if h.person_id == ids[ANN]), key=lambda h: h.similarity)
    assert (hits[1].face_id, hits[1].similarity) == (best_of_ann.face_id, best_of_ann.similarity)
    assert hits[0].similarity > hits[1].similarity > hits[2].similarity


def test_top_k_bounds_the_persons_not_the_faces(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 3, BOB: 3, CY: 3})
    assert [m.person_id for m in identify_image(fake_context, portrait(ANN, 8), top_k=1)[0].matches] == [ids[ANN]]
    three = identify_image(fake_context, portrait(ANN, 8), top_k=3)[0].matches
    assert len(three) == 3 and {m.person_id for m in three} == set(ids.values())
    assert [m.person_id for m in identify_image(fake_context, portrait(ANN, 8), top_k=50)[0].matches] == [
        m.person_id for m in three
    ]
    assert [m.similarity for m in three] == sorted((m.similarity for m in three), reverse=True)


def test_an_empty_or_missing_gallery(fake_context: ServiceContext) -> None:
    ensure_gallery(fake_context, "empty-one")
    [face] = identify_image(fake_context, portrait(ANN), "empty-one")
    assert face.is_unknown and face.matches == [] and face.similarity == 0.0
    with pytest.raises(NotFound):
        identify_image(fake_context, portrait(ANN), "no-such-gallery")


def test_a_gallery_of_another_model_is_refused(fake_context: ServiceContext) -> None:
    enroll_people(fake_context, {ANN: 1})
    fake_context.use_pipeline(fake_pipeline(model="other-model"))
    with pytest.raises(ContractMismatch, match="other-model"):
        identify_image(fake_context, portrait(ANN))
    with pytest.raises(ContractMismatch):
        rank_primary_faces(fake_context, [("a.png", portrait(ANN))])


def test_ranking_primary_faces_keeps_failures_in_the_answer(fake_context: ServiceContext) -> None:
    enroll_people(fake_context, {ANN: 2, BOB: 1})
    ranked = rank_primary_faces(fake_context, [("ann.png", portrait(ANN, 5)), ("none.png", blank())], top_k=2)
    by_name = {r["name"]: r for r in ranked}
    error = by_name["none.png"]["error"]
    assert isinstance(error, dict) and error["code"] == "no_face" and error["message"].startswith("no face found")
    assert by_name["none.png"]["ranked"] == []
    rows = by_name["ann.png"]["ranked"]
    assert by_name["ann.png"]["error"] is None and isinstance(rows, list)
    assert [r[0] for r in rows] == [f"ext-{ANN}", f"ext-{BOB}"]
