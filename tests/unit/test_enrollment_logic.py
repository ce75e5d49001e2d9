"""Enrollment's logic on the fakes: who gets created, what is stored once, what is refused and why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.context import ServiceContext
from services.errors import ContractMismatch
from services.registry.enrollment import EnrollOptions, EnrollRequest, ImageInput, enroll, enroll_many
from services.registry.galleries import get_gallery
from services.registry.persons import PersonInput
from tests.unit.fakes import FaceSpec, blank, fake_pipeline, photo, portrait

ANN, BOB = 3, 40  # identities of the fake photos


def stored(ctx: ServiceContext) -> tuple[int, int, int]:
    """(persons, faces, vectors) of the default gallery."""
    vectors = ctx.index.count(get_gallery(ctx, "default").collection)
    return ctx.db.persons.count_documents({}), ctx.db.faces.count_documents({}), vectors


def options(ctx: ServiceContext, **changes: object) -> EnrollOptions:
    return replace(EnrollOptions.from_settings(ctx), **changes)


def test_a_person_is_created_only_when_a_face_passes(fake_context: ServiceContext) -> None:
    refused = enroll(
        fake_context,
        PersonInput("Ann", "ann-1"),
        [ImageInput("empty.png", blank()), ImageInput("flat.png", portrait(ANN, texture=0))],
    )
    assert refused.person_id is None and not refused.person_created and refused.display_name == "Ann"
    assert [o.status for o in refused.outcomes] == ["rejected", "rejected"]
    assert [o.code for o in refused.outcomes] == ["no_face", "low_quality"]
    assert refused.outcomes[0].reason.startswith("no face")
    assert refused.outcomes[1].reason.startswith("quality ") and "blurred" in refused.outcomes[1].reason
    assert refused.outcomes[1].quality is not None and refused.outcomes[1].quality["score"] < 0.25
    assert stored(fake_context) == (0, 0, 0)

    done = enroll(
        fake_context,
        PersonInput("Ann", "ann-1"),
        [ImageInput("empty.png", blank()), ImageInput("a.png", portrait(ANN))],
    )
    assert done.person_created and done.person_id is not None
    assert [o.status for o in done.outcomes] == ["rejected", "enrolled"]
    assert stored(fake_context) == (1, 1, 1)
    face = fake_context.db.faces.find_one({"_id": done.outcomes[1].face_id})
    assert face is not None and face["person_id"] == done.person_id and face["vector_state"] == "indexed"


def test_a_face_under_the_minimum_size_is_refused(fake_context: ServiceContext) -> None:
    result = enroll(fake_context, PersonInput("Ann"), [ImageInput("tiny.png", photo(FaceSpec(ANN, side=12)))])
    assert result.person_id is None and result.outcomes[0].code == "face_too_small"


def test_re_enrolling_the_same_photo_is_idempotent(fake_context: ServiceContext) -> None:
    images = [ImageInput("a.png", portrait(ANN)), ImageInput("b.png", portrait(ANN, 1))]
    first = enroll(fake_context, PersonInput("Ann", "ann-1"), images)
    again = enroll(fake_context, PersonInput("Ann", "ann-1"), [*images, ImageInput("copy.png", portrait(ANN))])
    assert first.count("enrolled") == 2 and again.person_id == first.person_id and not again.person_created
    assert [o.status for o in again.outcomes] == ["already_enrolled"] * 3
    assert [o.face_id for o in again.outcomes[:2]] == [o.face_id for o in first.outcomes]
    assert again.outcomes[2].reason == "the same image is earlier in this request"
    assert [o.code for o in again.outcomes] == [None] * 3
    assert stored(fake_context) == (1, 2, 2)
    by_id = enroll(fake_context, PersonInput("ignored", person_id=first.person_id), images[:1])
    assert by_id.outcomes[0].status == "already_enrolled" and stored(fake_context) == (1, 2, 2)


def test_the_same_photo_for_another_person_is_a_warning_or_refused(fake_context: ServiceContext) -> None:
    enroll(fake_context, PersonInput("Ann"), [ImageInput("a.png", portrait(ANN))])
    refuse = options(fake_context, duplicate_photos="refuse")
    refused = enroll(fake_context, PersonInput("Bob"), [ImageInput("a.png", portrait(ANN))], options=refuse)
    assert refused.person_id is None and refused.outcomes[0].status == "rejected"
    assert (refused.outcomes[0].code, refused.outcomes[0].reason) == ("duplicate_photo", "already enrolled for Ann")
    assert stored(fake_context) == (1, 1, 1)

    warned = enroll(fake_context, PersonInput("Bob"), [ImageInput("a.png", portrait(ANN))])
    assert warned.person_created and warned.outcomes[0].status == "enrolled"
    assert "the same photo is already enrolled for Ann" in warned.outcomes[0].warnings
    assert stored(fake_context) == (2, 2, 2)


def test_the_same_photo_twice_in_one_batch_names_its_first_owner(fake_context: ServiceContext) -> None:
    same = ImageInput("a.png", portrait(ANN))
    ann, bob = enroll_many(
        fake_context, [EnrollRequest(PersonInput("Ann"), [same]), EnrollRequest(PersonInput("Bob"), [same])]
    )
    assert ann.outcomes[0].status == bob.outcomes[0].status == "enrolled"
    assert "the same photo is already enrolled for Ann" in bob.outcomes[0].warnings
    assert ann.person_id != bob.person_id and stored(fake_context) == (2, 2, 2)


def test_a_face_more_like_another_person_is_flagged(fake_context: ServiceContext) -> None:
    enroll(fake_context, PersonInput("Ann"), [ImageInput("a.png", portrait(ANN))])
    other_photo = enroll(fake_context, PersonInput("Bob"), [ImageInput("b.png", portrait(ANN, 5))])
    assert any(w.startswith("looks like Ann (similarity 0.9") for w in other_photo.outcomes[0].warnings)
    stranger = enroll(fake_context, PersonInput("Cy"), [ImageInput("c.png", portrait(BOB))])
    assert stranger.outcomes[0].warnings == ()


def test_multi_face_photos_follow_the_policy(fake_context: ServiceContext) -> None:
    # Bob in the middle, Ann smaller in a corner: the main face is Bob's.
    group = photo(FaceSpec(BOB, x=96, y=80, side=112), FaceSpec(ANN, x=8, y=8, side=48), size=(256, 320))
    refused = enroll(fake_context, PersonInput("Bob"), [ImageInput("group.png", group)])
    assert refused.person_id is None and refused.outcomes[0].code == "multiple_faces"
    assert refused.outcomes[0].reason.startswith("2 faces found")

    largest = options(fake_context, multi_face="largest")
    done = enroll(fake_context, PersonInput("Bob"), [ImageInput("group.png", group)], options=largest)
    assert done.outcomes[0].status == "enrolled"
    assert done.outcomes[0].warnings == ("2 faces found; the main one was used",)
    face = fake_context.db.faces.find_one({"_id": done.outcomes[0].face_id})
    assert face is not None and face["box"] == [96.0, 80.0, 208.0, 192.0]


def test_a_gallery_of_another_model_refuses_enrollment(fake_context: ServiceContext) -> None:
    enroll(fake_context, PersonInput("Ann"), [ImageInput("a.png", portrait(ANN))])
    fake_context.use_pipeline(fake_pipeline(model="other-model"))
    with pytest.raises(ContractMismatch):
        enroll(fake_context, PersonInput("Bob"), [ImageInput("b.png", portrait(BOB))])
    assert stored(fake_context) == (1, 1, 1)
