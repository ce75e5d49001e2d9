"""Every MongoDB record -> document -> record is the identity, and the documents keep their stored layout."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from services.errors import NotFound
from services.storage.records import (
    LEGACY_REASON_CODES,
    AttendanceEvent,
    AuditEntry,
    Consent,
    Face,
    Gallery,
    Job,
    Person,
    Record,
    RejectionRecord,
    Review,
    find_or_raise,
    legacy_reason,
    set_or_raise,
)
from workers.errors import BY_CODE

T0 = datetime(2026, 3, 11, 4, 10, 0, 123000, tzinfo=UTC)
T1 = datetime(2026, 3, 12, 23, 59, 59, 999000, tzinfo=UTC)
VECTOR = np.array([0.25, -0.5, 1.0, 0.125], dtype=np.float32)

PERSON = Person("p1", "Ann Lee", "emp-7", Consent(True, "signed form", T0), T0, T1)
FACE = Face(
    id="f1",
    person_id="p1",
    gallery="default",
    image_sha256="ab" * 32,
    image_path="/data/faces/default/p1/ab.jpg",
    chip_path="/data/faces/default/p1/ab_chip.png",
    box=[10.0, 20.5, 110.0, 140.25],
    landmarks=[[30.0, 60.0], [80.0, 60.0], [55.0, 85.0], [35.0, 110.0], [75.0, 110.0]],
    detection_score=0.998,
    quality={"score": 0.87, "sharpness": 120.5},
    contract="mobilefacenet-512d-0123456789ab",
    vector=VECTOR,
    vector_state="indexed",
    created_at=T0,
    updated_at=T1,
    source_name="ann.jpg",
)
GALLERY = Gallery(
    name="default",
    contract="mobilefacenet-512d-0123456789ab",
    model="mobilefacenet",
    dim=512,
    collection="g_default",
    verify_threshold=0.3,
    identify_threshold=0.5,
    created_at=T0,
    updated_at=T1,
    calibration={"fpir": 0.01, "threshold": 0.52},
)
EVENT = AttendanceEvent("e1", None, None, "door-1", T0, 0.41, "/data/snapshots/door-1/e1.jpg")
OPEN_REVIEW = Review("default:p1:p2", "default", ["p1", "p2"], ["f1", "f2"], 0.71, "open", T0, T1)
DECIDED_REVIEW = Review(
    "default:p1:p2", "default", ["p1", "p2"], ["f1", "f2"], 0.71, "merged", T0, T1, "admin", T1, {"faces_moved": 2}
)
REJECTION = RejectionRecord(
    "default:emp-7:ab", "default", "emp-7", "ann.jpg", "no face found", "no_face", T0, "/in/ann.jpg"
)
UNREAD = RejectionRecord("default:emp-7:file:x.jpg", "default", "emp-7", "x.jpg", "not an image", "invalid_image", T0)
ENTRY = AuditEntry(T0, "admin", "person.erase", "p1", {"faces": 2, "why": {"request": "r-9"}})
QUEUED = Job(
    "j1", "gallery_evaluation", {"gallery": "eval", "root": "/data"}, "admin", "queued", 0, 0, None, None, T0, T0
)
DONE = Job("j2", "gallery_evaluation", {"gallery": "eval"}, "worker", "done", 8, 8, {"top1": 0.75}, None, T0, T1)
RECORDS = [
    PERSON,
    Person("p2", "Bo", None, None, T0, T0),
    FACE,
    GALLERY,
    EVENT,
    OPEN_REVIEW,
    DECIDED_REVIEW,
    REJECTION,
    UNREAD,
    ENTRY,
    QUEUED,
    DONE,
]


def assert_same(a: Record, b: Record) -> None:
    assert type(a) is type(b)
    for f in fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and y.dtype == x.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y and type(x) is type(y), f.name


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_record_to_document_to_record_is_the_identity(record: Record) -> None:
    assert_same(type(record).from_doc(record.to_doc()), record)


def naive(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as pymongo returns it without tz_aware: naive UTC datetimes, nested ones too."""
    return {
        k: naive(v) if isinstance(v, dict) else v.replace(tzinfo=None) if isinstance(v, datetime) else v
        for k, v in doc.items()
    }


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_naive_stored_times_are_read_as_utc(record: Record) -> None:
    assert_same(type(record).from_doc(naive(record.to_doc())), record)


def test_documents_keep_their_stored_layout() -> None:
    assert PERSON.to_doc() == {
        "_id": "p1",
        "display_name": "Ann Lee",
        "external_id": "emp-7",
        "consent": {"given": True, "note": "signed form", "recorded_at": T0},
        "status": "active",
        "created_at": T0,
        "updated_at": T1,
    }
    face = FACE.to_doc()
    assert face.pop("vector") == b"\x00\x00\x80>\x00\x00\x00\xbf\x00\x00\x80?\x00\x00\x00>"  # little-endian float32
    assert face == {
        "_id": "f1",
        "person_id": "p1",
        "gallery": "default",
        "image_sha256": "ab" * 32,
        "image_path": "/data/faces/default/p1/ab.jpg",
        "chip_path": "/data/faces/default/p1/ab_chip.png",
        "box": [10.0, 20.5, 110.0, 140.25],
        "landmarks": [[30.0, 60.0], [80.0, 60.0], [55.0, 85.0], [35.0, 110.0], [75.0, 110.0]],
        "detection_score": 0.998,
        "quality": {"score": 0.87, "sharpness": 120.5},
        "contract": "mobilefacenet-512d-0123456789ab",
        "vector_state": "indexed",
        "source_name": "ann.jpg",
        "created_at": T0,
        "updated_at": T1,
    }
    assert GALLERY.to_doc() == {
        "_id": "default",
        "contract": "mobilefacenet-512d-0123456789ab",
        "model": "mobilefacenet",
        "dim": 512,
        "collection": "g_default",
        "verify_threshold": 0.3,
        "identify_threshold": 0.5,
        "calibration": {"fpir": 0.01, "threshold": 0.52},
        "reindexing_to": None,
        "created_at": T0,
        "updated_at": T1,
    }
    assert ENTRY.to_doc() == {  # MongoDB gives it an ObjectId
        "time": T0,
        "actor": "admin",
        "action": "person.erase",
        "subject": "p1",
        "details": {"faces": 2, "why": {"request": "r-9"}},
    }
    assert QUEUED.to_doc() == {
        "_id": "j1",
        "kind": "gallery_evaluation",
        "params": {"gallery": "eval", "root": "/data"},
        "actor": "admin",
        "state": "queued",
        "done": 0,
        "total": 0,
        "result": None,
        "error": None,
        "created_at": T0,
        "updated_at": T0,
    }
    assert REJECTION.to_doc() == {
        "_id": "default:emp-7:ab",
        "gallery": "default",
        "external_id": "emp-7",
        "image": "ann.jpg",
        "reason": "no face found",
        "code": "no_face",
        "time": T0,
        "path": "/in/ann.jpg",
    }
    assert EVENT.to_doc() == {
        "_id": "e1",
        "person_id": None,
        "display_name": None,
        "source": "door-1",
        "time": T0,
        "similarity": 0.41,
        "snapshot_path": "/data/snapshots/door-1/e1.jpg",
    }


def test_fields_left_out_while_none() -> None:
    """An undecided review has no decision fields, a rejection of an unreadable path no path (written by $set)."""
    review = {
        "_id": "default:p1:p2",
        "gallery": "default",
        "person_ids": ["p1", "p2"],
        "face_ids": ["f1", "f2"],
        "similarity": 0.71,
        "status": "open",
        "created_at": T0,
        "updated_at": T1,
    }
    assert OPEN_REVIEW.to_doc() == review
    decided = {**review, "status": "merged", "decided_by": "admin", "decided_at": T1, "details": {"faces_moved": 2}}
    assert DECIDED_REVIEW.to_doc() == decided
    assert "path" not in UNREAD.to_doc()
    assert REJECTION.to_doc()["path"] == "/in/ann.jpg"


def test_reading_ignores_undeclared_fields_and_fills_absent_optional_ones() -> None:
    doc = {**EVENT.to_doc(), "erased": True}  # an erased person's anonymised event
    assert_same(AttendanceEvent.from_doc(doc), EVENT)
    face = {**FACE.to_doc(), "next_vector": b"\x00" * 16}  # a reindex in progress
    del face["source_name"]  # written before source names were kept
    assert AttendanceEvent.from_doc({k: v for k, v in doc.items() if k != "snapshot_path"}).snapshot_path is None
    assert Face.from_doc(face).source_name == ""
    with pytest.raises(KeyError):
        Face.from_doc({k: v for k, v in FACE.to_doc().items() if k != "gallery"})


def test_an_audit_entry_is_read_without_its_object_id() -> None:
    assert AuditEntry.from_doc({**ENTRY.to_doc(), "_id": object()}) == ENTRY


def test_a_rejection_stored_before_codes_is_read_with_the_code_of_its_prefix() -> None:
    """The upgrade path: such a document holds only `reason` = "Type: message"."""
    old = {k: v for k, v in REJECTION.to_doc().items() if k != "code"}
    read = RejectionRecord.from_doc({**old, "reason": "NoFace: no face found"})
    assert_same(read, REJECTION)
    outside = RejectionRecord.from_doc({**old, "reason": "OutsideInputRoots: /etc/x: not under /data"})
    assert (outside.code, outside.reason) == ("outside_input_roots", "/etc/x: not under /data")
    duplicate = RejectionRecord.from_doc({**old, "reason": "DuplicatePhoto: already enrolled for Ann Lee"})
    assert (duplicate.code, duplicate.reason) == ("duplicate_photo", "already enrolled for Ann Lee")
    assert legacy_reason("Gremlins: in the works") == ("error", "Gremlins: in the works")
    assert legacy_reason("no prefix") == ("error", "no prefix")


def test_every_legacy_reason_name_is_the_class_of_its_code() -> None:
    assert {name: BY_CODE[code].__name__ for name, code in LEGACY_REASON_CODES.items()} == {
        name: name for name in LEGACY_REASON_CODES
    }


class OneDocument:
    """A collection of one document, with the `find_one` and `update_one` ($set) that the helpers use."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        return self.doc if query == {"_id": self.doc["_id"]} else None

    def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> SimpleNamespace:
        found = self.find_one(query)
        if found is not None:
            found.update(update["$set"])
        return SimpleNamespace(matched_count=int(found is not None))


def test_get_reads_the_record_or_raises_not_found() -> None:
    persons: Any = OneDocument(PERSON.to_doc())
    assert_same(Person.get(persons, "p1", "person p1"), PERSON)
    with pytest.raises(NotFound, match=r"^person p9 does not exist$"):
        Person.get(persons, "p9", "person p9")
    with pytest.raises(NotFound, match=r"^job j1 does not exist$"):
        find_or_raise(persons, "j1", "job j1")


def test_set_or_raise_changes_the_stored_fields_or_raises_not_found() -> None:
    persons: Any = OneDocument(PERSON.to_doc())
    set_or_raise(persons, "p1", {"display_name": "Ann Li", "updated_at": T0}, "person p1")
    assert Person.get(persons, "p1", "person p1") == replace(PERSON, display_name="Ann Li", updated_at=T0)
    with pytest.raises(NotFound, match=r"^person p9 does not exist$"):
        set_or_raise(persons, "p9", {"display_name": "X"}, "person p9")
