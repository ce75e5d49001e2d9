"""The domain services against real servers: a MongoDB-protocol server, embedded Chroma, files on disk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.image_io import load_image
from services.attendance.events import daily_report, events, record_event
from services.config import Settings
from services.context import ServiceContext, open_context
from services.engine import build_pipeline
from services.errors import Conflict, ContractMismatch
from services.evaluation.calibration import apply_calibration, identify_threshold_for_fpir
from services.registry.consistency import rebuild_index, reconcile, reindex
from services.registry.enrollment import EnrollOptions, ImageInput, enroll
from services.registry.erasure import erase_person
from services.registry.galleries import get_gallery
from services.registry.persons import PersonInput, search_persons
from services.reports.attendance import report_csv
from services.search.identification import identify_image
from services.storage.templates import template_collection
from services.storage.vector_index import HnswParams

Img = Callable[[str, int], Path]


def photo(lfw_image: Img, person: str, n: int) -> ImageInput:
    path = lfw_image(person, n)
    return ImageInput(path.name, path.read_bytes())


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def counts(ctx: ServiceContext, gallery: str = "default") -> tuple[int, int]:
    """(indexed face records in MongoDB, vectors in Chroma) of a gallery."""
    g = get_gallery(ctx, gallery)
    return ctx.db.faces.count_documents({"gallery": gallery, "vector_state": "indexed"}), ctx.index.count(g.collection)


def test_enrollment_stores_records_vectors_and_files(ctx: ServiceContext, lfw_image: Img) -> None:
    result = enroll(ctx, PersonInput("Colin Powell", "emp-1"), [photo(lfw_image, "Colin_Powell", n) for n in (1, 2)])
    assert result.count("enrolled") == 2 and result.person_created
    assert counts(ctx) == (2, 2)
    for doc in ctx.db.faces.find({"person_id": result.person_id}):
        assert Path(doc["image_path"]).is_file() and Path(doc["chip_path"]).is_file()
        assert doc["contract"] == ctx.pipeline.contract.id
        assert doc["created_at"].tzinfo is not None
    people, total = search_persons(ctx, "powell")
    assert total == 1 and people[0].external_id == "emp-1"


def test_enrolling_the_same_images_twice_changes_nothing(ctx: ServiceContext, lfw_image: Img) -> None:
    images = [photo(lfw_image, "Colin_Powell", n) for n in (1, 2)]
    first = enroll(ctx, PersonInput("Colin Powell", "emp-1"), images)
    before = (ctx.db.persons.count_documents({}), *counts(ctx))
    second = enroll(ctx, PersonInput("Colin Powell", "emp-1"), images)
    assert second.person_id == first.person_id and not second.person_created
    assert second.count("already_enrolled") == 2 and second.count("enrolled") == 0
    assert (ctx.db.persons.count_documents({}), *counts(ctx)) == before
    with pytest.raises(Conflict, match="belongs to"):
        enroll(ctx, PersonInput("Someone Else", "emp-1"), images)


def test_bad_photos_are_rejected_with_reasons_and_good_ones_still_enroll(ctx: ServiceContext, lfw_image: Img) -> None:
    group = np.concatenate(
        [
            load_image(lfw_image("Colin_Powell", 3))[40:210, 40:210],
            load_image(lfw_image("George_W_Bush", 1))[40:210, 40:210],
        ],
        axis=1,
    )
    blurred = cv2.resize(cv2.GaussianBlur(load_image(lfw_image("Colin_Powell", 4)), (0, 0), 6), (100, 100))
    images = [
        photo(lfw_image, "Colin_Powell", 1),
        ImageInput("notes.txt", b"hello"),
        ImageInput("wall.jpg", jpeg(np.full((200, 200, 3), 180, np.uint8))),
        ImageInput("group.jpg", jpeg(group)),
        ImageInput("blurred.jpg", jpeg(blurred)),
    ]
    result = enroll(ctx, PersonInput("Colin Powell"), images)
    by_name = {o.name: o for o in result.outcomes}
    assert by_name["Colin_Powell_0001.jpg"].status == "enrolled"
    assert by_name["notes.txt"].code == "invalid_image"
    assert by_name["wall.jpg"].code == "no_face"
    assert by_name["group.jpg"].code == "multiple_faces" and by_name["group.jpg"].reason.startswith("2 faces found")
    assert by_name["blurred.jpg"].code == "low_quality" and by_name["blurred.jpg"].quality
    assert counts(ctx) == (1, 1)
    largest = enroll(
        ctx, PersonInput("Colin Powell"), [ImageInput("group.jpg", jpeg(group))], options=EnrollOptions("largest", 0.25)
    )
    assert largest.outcomes[0].status == "enrolled" and "2 faces" in largest.outcomes[0].warnings[0]


def enroll_three(ctx: ServiceContext, lfw_image: Img) -> dict[str, str]:
    ids = {}
    for name in ("Colin_Powell", "Tony_Blair", "Gerhard_Schroeder"):
        ids[name] = enroll(
            ctx, PersonInput(name.replace("_", " ")), [photo(lfw_image, name, n) for n in (1, 2)]
        ).person_id
    return ids


def test_open_set_identification_names_known_people_and_says_unknown(ctx: ServiceContext, lfw_image: Img) -> None:
    ids = enroll_three(ctx, lfw_image)
    known = identify_image(ctx, lfw_image("Tony_Blair", 7))
    assert len(known) == 1 and known[0].person_id == ids["Tony_Blair"] and known[0].display_name == "Tony Blair"
    assert known[0].similarity >= known[0].threshold and len(known[0].matches) == 3
    stranger = identify_image(ctx, lfw_image("Aaron_Peirsol", 1))
    assert stranger[0].is_unknown and stranger[0].to_dict()["identity"] == "unknown"
    assert stranger[0].matches  # the nearest persons are still shown, below the threshold


def test_every_face_of_a_group_photo_is_identified(ctx: ServiceContext, lfw_image: Img) -> None:
    ids = enroll_three(ctx, lfw_image)
    group = np.concatenate(
        [
            load_image(lfw_image("Tony_Blair", 5))[40:210, 40:210],
            load_image(lfw_image("Colin_Powell", 5))[40:210, 40:210],
        ],
        axis=1,
    )
    faces = sorted(identify_image(ctx, group), key=lambda f: f.box[0])
    assert [f.person_id for f in faces] == [ids["Tony_Blair"], ids["Colin_Powell"]]


def test_another_model_is_refused_with_the_reindex_command(
    ctx: ServiceContext, settings: Settings, lfw_image: Img
) -> None:
    enroll_three(ctx, lfw_image)
    ctx.use_pipeline(build_pipeline(settings, model="dlib"))
    with pytest.raises(ContractMismatch) as err:
        identify_image(ctx, lfw_image("Tony_Blair", 7))
    message = str(err.value)
    assert "mobilefacenet" in message and "dlib" in message and "scripts/reindex.py default --model dlib" in message
    with pytest.raises(ContractMismatch):
        enroll(ctx, PersonInput("Aaron Peirsol"), [photo(lfw_image, "Aaron_Peirsol", 1)])


def test_reindex_moves_the_gallery_to_another_model(ctx: ServiceContext, settings: Settings, lfw_image: Img) -> None:
    ids = enroll_three(ctx, lfw_image)
    old = get_gallery(ctx, "default")
    dlib = build_pipeline(settings, model="dlib")
    report = reindex(ctx, "default", dlib)
    new = get_gallery(ctx, "default")
    assert report["reindexed"] == 6 and new.contract == dlib.contract.id != old.contract
    assert new.collection != old.collection and old.collection not in [
        c.name for c in ctx.index.client.list_collections()
    ]
    ctx.use_pipeline(dlib)
    assert counts(ctx) == (6, 6)
    assert identify_image(ctx, lfw_image("Tony_Blair", 7))[0].person_id == ids["Tony_Blair"]
    assert {d["contract"] for d in ctx.db.faces.find()} == {dlib.contract.id}
    assert all(len(d["vector"]) == 4 * 128 for d in ctx.db.faces.find())


def test_a_rebuild_applies_the_hnsw_settings_and_keeps_every_face(ctx: ServiceContext, lfw_image: Img) -> None:
    ids = enroll_three(ctx, lfw_image)
    old = get_gallery(ctx, "default")
    assert ctx.index.hnsw(old.collection) == HnswParams(32, 200, 200)  # the settings' defaults
    assert rebuild_index(ctx, "default")["rebuilt"] == 0  # already built with them

    wanted = {"hnsw_m": 16, "hnsw_ef_construction": 100, "hnsw_ef_search": 64}
    other = open_context(ctx.settings.model_copy(update=wanted), ctx.pipeline)
    report = rebuild_index(other, "default")
    new = get_gallery(other, "default")
    assert report["rebuilt"] == 6 and report["from_hnsw"] == {
        "max_neighbors": 32,
        "ef_construction": 200,
        "ef_search": 200,
    }
    assert new.collection != old.collection and new.contract == old.contract and new.reindexing_to is None
    assert other.index.hnsw(new.collection) == HnswParams(16, 100, 64)
    names = {c.name for c in other.index.client.list_collections()}
    assert old.collection not in names and template_collection(old.collection) not in names
    assert counts(other) == (6, 6) and other.index.count(template_collection(new.collection)) == 3
    assert identify_image(other, lfw_image("Tony_Blair", 7))[0].person_id == ids["Tony_Blair"]
    enroll(other, PersonInput("Aaron Peirsol"), [photo(lfw_image, "Aaron_Peirsol", 1)])  # enrollment is open again
    assert counts(other) == (7, 7)


def test_reconcile_fills_an_empty_index_from_mongodb(ctx: ServiceContext, lfw_image: Img, tmp_path: Path) -> None:
    # An upgrade from embedded Chroma to the server (or to a new Chroma database): MongoDB is the source of truth.
    ids = enroll_three(ctx, lfw_image)
    moved = ctx.settings.model_copy(update={"chroma_mode": "embedded", "data_dir": tmp_path / "moved"})
    fresh = open_context(moved, ctx.pipeline)
    gallery = get_gallery(fresh, "default")
    assert fresh.index.count(gallery.collection) == 0
    report = reconcile(fresh, "default")
    assert report.missing_vectors_restored == 6  # and their templates, written as the faces are projected
    assert counts(fresh) == (6, 6) and fresh.index.count(template_collection(gallery.collection)) == 3
    assert identify_image(fresh, lfw_image("Tony_Blair", 7))[0].person_id == ids["Tony_Blair"]


def test_an_erasure_during_a_reindex_leaves_no_vector_in_the_new_collection(
    ctx: ServiceContext, lfw_image: Img
) -> None:
    ids = enroll_three(ctx, lfw_image)
    gallery = get_gallery(ctx, "default")
    target = gallery.collection + ".next"
    blair = list(ctx.db.faces.find({"person_id": ids["Tony_Blair"]}, {"_id": 1}))
    # What a reindex has copied so far, and the claim it holds while it copies.
    ctx.index.upsert(target, [d["_id"] for d in blair], np.eye(len(blair), 128, dtype=np.float32), ["x"] * len(blair))
    ctx.db.galleries.update_one({"_id": "default"}, {"$set": {"reindexing_into": target}})
    erase_person(ctx, ids["Tony_Blair"])
    assert ctx.index.count(target) == 0 and counts(ctx) == (4, 4)


def test_erasure_removes_records_vectors_files_and_snapshots(ctx: ServiceContext, lfw_image: Img) -> None:
    ids = enroll_three(ctx, lfw_image)
    blair = ids["Tony_Blair"]
    files = [Path(d[k]) for d in ctx.db.faces.find({"person_id": blair}) for k in ("image_path", "chip_path")]
    event = record_event(ctx, blair, "Tony Blair", "gate-1", 0.8, snapshot=load_image(lfw_image("Tony_Blair", 7)))
    assert event is not None and event.snapshot_path and Path(event.snapshot_path).is_file()
    report = erase_person(ctx, blair, actor="admin")
    assert report.faces_deleted == 2 and report.snapshots_deleted == 1
    assert ctx.db.persons.find_one({"_id": blair}) is None
    assert ctx.db.faces.count_documents({"person_id": blair}) == 0
    assert counts(ctx) == (4, 4)
    assert not any(f.exists() for f in files) and not Path(event.snapshot_path).exists()
    row = ctx.db.attendance.find_one({"_id": event.id})
    assert row is not None and row["person_id"] is None and row["erased"] and row["display_name"] is None
    audit = ctx.db.audit.find_one({"action": "person.erase", "subject": blair})
    assert audit is not None and audit["actor"] == "admin"
    assert identify_image(ctx, lfw_image("Tony_Blair", 7))[0].person_id != blair


def test_attendance_cooldown_and_reports(ctx: ServiceContext) -> None:
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    log = [
        ("p1", "gate", t0),
        ("p1", "gate", t0 + timedelta(seconds=60)),  # within the cooldown: skipped
        ("p1", "lobby", t0 + timedelta(seconds=60)),  # another source
        ("p1", "gate", t0 + timedelta(minutes=6)),
        ("p2", "gate", t0 + timedelta(minutes=1)),
        (None, "gate", t0 + timedelta(minutes=2)),
        (None, "gate", t0 + timedelta(minutes=3)),  # unknowns share it
        ("p1", "gate", t0 + timedelta(days=1)),
    ]
    stored = [record_event(ctx, p, p and p.upper(), s, 0.7, when=t, cooldown_s=300) for p, s, t in log]
    assert [e is not None for e in stored] == [True, False, True, True, True, True, False, True]
    day = t0.date()
    rows = daily_report(ctx, day, day)
    p1 = next(r for r in rows if r.person_id == "p1")
    assert (p1.count, p1.first_seen, p1.last_seen) == (3, t0, t0 + timedelta(minutes=6))
    assert len(events(ctx, day, day, unknown_only=True)) == 1
    assert len(daily_report(ctx, day, day, source="lobby")) == 1
    csv_text = report_csv(ctx, day, day + timedelta(days=1))
    assert csv_text.splitlines()[0] == "day,person_id,display_name,first_seen,last_seen,events,timezone"
    assert len(csv_text.splitlines()) == 4  # p1 and p2 on day one, p1 on day two


def test_calibrated_threshold_is_stored_on_the_gallery(ctx: ServiceContext, lfw_image: Img) -> None:
    enroll_three(ctx, lfw_image)
    calibration = identify_threshold_for_fpir(np.linspace(0.1, 0.6, 200), 0.01)
    gallery = apply_calibration(ctx, "default", calibration, "test")
    assert gallery.identify_threshold == pytest.approx(calibration["threshold"])
    assert gallery.calibration is not None and gallery.calibration["target_fpir"] == 0.01
    assert reconcile(ctx, "default").repaired == 0


def test_gallery_evaluation_runs_as_a_stored_job_and_is_repeatable(ctx: ServiceContext, lfw: Path) -> None:
    from model.evaluation.protocols import read_csv
    from services.evaluation.gallery import evaluate_gallery, rows_from_csv
    from services.storage.jobs import get_job

    rows = rows_from_csv(read_csv(lfw / "gallery_split.csv", ("path", "identity", "role")))
    people = sorted({r.identity for r in rows})[::40]  # 11 of the 423 people
    subset = [r for r in rows if r.identity in people]
    first = evaluate_gallery(ctx, lfw, subset, "eval-small").report
    job = get_job(ctx, first["job_id"])
    assert job.state == "done" and job.result is not None and job.result["top1"] == first["top1"]
    assert first["n_identities"] == len(people) and first["top1"] >= 0.9
    assert first["top1"] <= first["top3"] <= first["top5"]
    again = evaluate_gallery(ctx, lfw, subset, "eval-small").report
    assert (
        again["enrollment"]["enrolled"] == 0
        and again["enrollment"]["already_enrolled"] == first["enrollment"]["enrolled"]
    )
    assert again["top1"] == first["top1"]
