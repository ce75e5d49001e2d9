"""Person records: create (idempotent by external id), read, search, rename."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.context import ServiceContext
from services.errors import Conflict, ServiceError
from services.storage.audit import audit
from services.storage.records import Consent, Face, Person, set_or_raise, utcnow


@dataclass(frozen=True, slots=True)
class PersonInput:
    display_name: str
    external_id: str | None = None
    consent: Consent | None = None
    person_id: str | None = None  # add to this existing person (the other fields are then ignored)


MAX_TEXT = 200  # display names and external ids (the task messages' limit too, see workers.messages)


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_TEXT:
        raise ServiceError(f"a person needs a display name of 1-{MAX_TEXT} characters")
    return name


def get_person(ctx: ServiceContext, person_id: str) -> Person:
    return Person.get(ctx.db.persons, person_id, f"person {person_id}")


def find_by_external_id(ctx: ServiceContext, external_id: str) -> Person | None:
    doc = ctx.db.persons.find_one({"external_id": external_id})
    return None if doc is None else Person.from_doc(doc)


def existing_person(ctx: ServiceContext, data: PersonInput) -> Person | None:
    """The person `data` names, if it exists already (by id or external id); creates nothing.

    Refuses what `create_or_get_person` would refuse: a bad display name, an unknown person id, an external id
    that belongs to someone with another name."""
    if data.person_id:
        return get_person(ctx, data.person_id)
    name = requested_name(data)
    existing = find_by_external_id(ctx, data.external_id) if data.external_id else None
    if existing is not None and existing.display_name != name:
        raise Conflict(f"external id {data.external_id!r} belongs to {existing.display_name!r}, not {name!r}")
    return existing


def requested_name(data: PersonInput) -> str:
    """The display name a new person of `data` gets; a bad name or external id is refused."""
    if data.external_id and len(data.external_id) > MAX_TEXT:
        raise ServiceError(f"an external id has at most {MAX_TEXT} characters")
    return _clean_name(data.display_name)


def create_or_get_person(ctx: ServiceContext, data: PersonInput, actor: str = "system") -> tuple[Person, bool]:
    """(person, created). With an external id, a second call returns the first person unchanged."""
    existing = existing_person(ctx, data)
    if existing is not None:
        return existing, False
    now = utcnow()
    person = Person(uuid.uuid4().hex, requested_name(data), data.external_id or None, data.consent, now, now)
    try:
        ctx.db.persons.insert_one(person.to_doc())
    except DuplicateKeyError:
        # A concurrent enrollment created the same external id first: use that one.
        assert data.external_id
        found = existing_person(ctx, data)
        if found is None:
            raise
        return found, False
    audit(
        ctx, actor, "person.create", person.id, {"display_name": person.display_name, "external_id": person.external_id}
    )
    return person, True


def rename_person(ctx: ServiceContext, person_id: str, display_name: str, actor: str = "system") -> Person:
    name = _clean_name(display_name)
    set_or_raise(ctx.db.persons, person_id, {"display_name": name, "updated_at": utcnow()}, f"person {person_id}")
    audit(ctx, actor, "person.rename", person_id, {"display_name": name})
    return get_person(ctx, person_id)


def search_persons(ctx: ServiceContext, text: str = "", skip: int = 0, limit: int = 50) -> tuple[list[Person], int]:
    """Persons whose name or external id contains `text` (case-insensitive), paginated; and the total."""
    query: dict[str, Any] = {}
    if text.strip():
        pattern = re.escape(text.strip())
        query = {
            "$or": [
                {"display_name": {"$regex": pattern, "$options": "i"}},
                {"external_id": {"$regex": pattern, "$options": "i"}},
            ]
        }
    total = ctx.db.persons.count_documents(query)
    docs = ctx.db.persons.find(query).sort("display_name").skip(skip).limit(limit)
    return [Person.from_doc(d) for d in docs], total


def names_of(ctx: ServiceContext, person_ids: set[str]) -> dict[str, str]:
    if not person_ids:
        return {}
    return {
        d["_id"]: d["display_name"]
        for d in ctx.db.persons.find({"_id": {"$in": list(person_ids)}}, {"display_name": 1})
    }


def faces_of(ctx: ServiceContext, person_id: str, gallery: str | None = None) -> list[Face]:
    """The person's faces, oldest first (in one gallery, or all)."""
    query: dict[str, Any] = {"person_id": person_id}
    if gallery:
        query["gallery"] = gallery
    return [Face.from_doc(d) for d in ctx.db.faces.find(query).sort("created_at", 1)]


@dataclass(frozen=True, slots=True)
class FaceSummary:
    faces: int
    galleries: tuple[str, ...]
    first_chip: str | None  # the oldest face's aligned chip, for a thumbnail


def face_summaries(ctx: ServiceContext, person_ids: list[str]) -> dict[str, FaceSummary]:
    """Per person: how many faces, in which galleries, and a thumbnail; one query, no vectors read."""
    docs = ctx.db.faces.find({"person_id": {"$in": person_ids}}, {"person_id": 1, "gallery": 1, "chip_path": 1}).sort(
        "created_at", 1
    )
    grouped: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        grouped.setdefault(d["person_id"], []).append(d)
    return {
        pid: FaceSummary(
            len(grouped.get(pid, [])),
            tuple(sorted({d["gallery"] for d in grouped.get(pid, [])})),
            grouped[pid][0]["chip_path"] if grouped.get(pid) else None,
        )
        for pid in person_ids
    }
