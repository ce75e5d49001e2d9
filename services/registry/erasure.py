"""Erasure of a person: records, vectors, stored images, attendance snapshots, claims and presence; an audit entry
remains."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from services.context import ServiceContext
from services.registry.galleries import get_gallery
from services.registry.persons import get_person
from services.storage.attendance_writes import forget_person, roll_forward
from services.storage.audit import audit
from services.storage.face_writes import delete_faces
from services.storage.records import AttendanceEvent, Face


@dataclass(frozen=True, slots=True)
class ErasureReport:
    person_id: str
    faces_deleted: int
    attendance_rows: int
    attendance_mode: str
    snapshots_deleted: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def erase_person(ctx: ServiceContext, person_id: str, actor: str = "system") -> ErasureReport:
    get_person(ctx, person_id)  # NotFound for an unknown id
    faces = [Face.from_doc(d) for d in ctx.db.faces.find({"person_id": person_id})]
    by_gallery: dict[str, list[Face]] = defaultdict(list)
    for f in faces:
        by_gallery[f.gallery].append(f)
    for name, group in by_gallery.items():
        delete_faces(ctx, get_gallery(ctx, name), group)
    for name in {*by_gallery, *ctx.db.faces.distinct("gallery")}:
        ctx.images.delete_person(name, person_id)
    rows, snapshots = _erase_attendance(ctx, person_id)
    ctx.db.dedup_reviews.delete_many({"person_ids": person_id})
    ctx.db.persons.delete_one({"_id": person_id})
    mode = ctx.settings.erase_attendance
    # The audit entry names the id only: no name or image of an erased person is kept.
    audit(ctx, actor, "person.erase", person_id, {"faces": len(faces), "attendance_rows": rows, "mode": mode})
    return ErasureReport(person_id, len(faces), rows, mode, snapshots)


def erase_face(ctx: ServiceContext, face_id: str, actor: str = "system") -> Face:
    """One face out of the gallery: its vector, record and stored files. The person stays."""
    face = Face.get(ctx.db.faces, face_id, f"face {face_id}")
    delete_faces(ctx, get_gallery(ctx, face.gallery), [face])
    audit(ctx, actor, "face.erase", face.person_id, {"face_id": face.id, "gallery": face.gallery})
    return face


def _erase_attendance(ctx: ServiceContext, person_id: str) -> tuple[int, int]:
    roll_forward(ctx, person_id)  # an event claimed by a writer that died is an event too: erased like the others
    events = [AttendanceEvent.from_doc(d) for d in ctx.db.attendance.find({"person_id": person_id})]
    snapshots = 0
    for e in events:
        if e.snapshot_path and Path(e.snapshot_path).is_file():
            Path(e.snapshot_path).unlink()
            snapshots += 1
    if ctx.settings.erase_attendance == "delete":
        ctx.db.attendance.delete_many({"person_id": person_id})
    else:
        # Anonymised: no name, no face; embeddings (kept on unknown events only) are biometric, never kept.
        ctx.db.attendance.update_many(
            {"person_id": person_id},
            {
                "$set": {"person_id": None, "display_name": None, "erased": True, "snapshot_path": None},
                "$unset": {"embeddings": ""},
            },
        )
    forget_person(ctx, person_id)  # their cooldown claims (and the event copies in them) and arrival/departure days
    return len(events), snapshots
