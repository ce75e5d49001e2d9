"""The writes that keep the attendance log whole: one event per (person, source) per cooldown, claimed atomically
in MongoDB; each event inserted once, by an id derived from what was seen; arrival and departure per day.

Claims (`attendance_claims`, `_id` "<person id, or 'unknown'>|<source>"): `windows` holds the newest KEPT_WINDOWS
cooldown windows {since, until, event_id}, `pending` the documents of events claimed but not yet in `attendance`.
An event at `t` claims with one find_one_and_update whose filter says "no window overlaps [t, t + cooldown)" (so
two events of a claim are a cooldown apart whatever order they come in) and whose update pushes the event's window
and document; with upsert=True, a claim that exists and fails the filter raises DuplicateKeyError
(E11000: mongod and SecantusDB alike): that is the cooldown. Of two writers at once, one wins. Then the event is
upserted by its id ($setOnInsert), its snapshot written, and its document pulled out of `pending`. A process that
dies in between leaves the event in `pending`: the next claim on that key, or `roll_forward` (each read of the
events), inserts it. An id seen again (a redelivered task) is the same event, never a second one. Events may come
out of order: a late one is checked against every kept window, not only the newest, and may not fall within the
cooldown before a logged one either.

Presence (`attendance_presence`, `_id` "<person id>|<source>|<day>"): the first and last sighting of a person at a
source on a (local) day, upserted with $min/$max, so any order and any number of writers give the same document.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.storage.db import Doc
from services.storage.faults import crash_point
from services.storage.private_files import write_private
from services.storage.records import AttendanceEvent, Record

if TYPE_CHECKING:  # the context is built from storage: storage names it for types only
    from services.context import ServiceContext

KEPT_WINDOWS = 16  # per claim: a late event older than the 16 newest windows is checked against those only
UNKNOWN = "unknown"  # the claim of unknown faces (frame by frame, where there are no tracks)


@dataclass(frozen=True, slots=True)
class Presence(Record):
    """A person at a source on one day (the site's zone): their first and last sighting (UTC)."""

    id: str
    person_id: str
    source: str
    day: str  # ISO date
    first_seen: datetime
    last_seen: datetime
    display_name: str | None = None


def claim_id(person_id: str | None, source: str) -> str:
    """The claim that holds the cooldown of a person (or of the unknown faces) at a source."""
    return f"{person_id or UNKNOWN}|{source}"


def log_once(
    ctx: ServiceContext, claim: str, event: AttendanceEvent, cooldown_s: float, snapshot: bytes | None
) -> AttendanceEvent | None:
    """`event` logged under `claim`, or the event logged before with its id (a redelivery); None when a window of
    the claim overlaps [its time, its time + cooldown) (the cooldown). `snapshot`: JPEG bytes for
    `event.snapshot_path`."""
    earlier = stored_event(ctx, event.id, snapshot)
    if earlier is not None:
        return earlier
    t = event.time
    window = {"since": t, "until": t + timedelta(seconds=cooldown_s), "event_id": event.id}
    try:
        doc = ctx.db.attendance_claims.find_one_and_update(
            {
                "_id": claim,
                "windows": {"$not": {"$elemMatch": {"since": {"$lt": window["until"]}, "until": {"$gt": t}}}},
            },
            {
                "$push": {
                    # A zero cooldown holds nothing: no window.
                    "windows": {
                        "$each": [window] if cooldown_s > 0 else [],
                        "$sort": {"since": 1},
                        "$slice": -KEPT_WINDOWS,
                    },
                    "pending": event.to_doc(),
                },
                "$setOnInsert": {"person_id": event.person_id, "source": event.source},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:  # the claim exists and a window of it overlaps this one
        return _held(ctx, claim, event, snapshot)
    assert doc is not None  # an upsert returning the document after it
    crash_point("after_attendance_claim")
    _write_snapshot(event, snapshot)
    _settle(ctx, doc)
    return event


def _held(ctx: ServiceContext, claim: str, event: AttendanceEvent, snapshot: bytes | None) -> AttendanceEvent | None:
    """Within the cooldown, unless the window that overlaps the event's is its own (a redelivery of an event whose first
    delivery died after its claim): then that event, rolled forward."""
    doc = ctx.db.attendance_claims.find_one({"_id": claim})
    if doc is None:  # erased meanwhile
        return None
    _settle(ctx, doc)
    if any(w["event_id"] == event.id for w in doc.get("windows", [])):
        return stored_event(ctx, event.id, snapshot)
    return None


def log_unique(ctx: ServiceContext, event: AttendanceEvent, snapshot: bytes | None) -> AttendanceEvent:
    """`event` logged once by its id, without a cooldown; the earlier event of that id when there is one."""
    earlier = stored_event(ctx, event.id, snapshot)
    if earlier is not None:
        return earlier
    insert_once(ctx, event.to_doc())
    _write_snapshot(event, snapshot)  # after the record: no snapshot file is ever left without one
    return event


def stored_event(ctx: ServiceContext, event_id: str, snapshot: bytes | None = None) -> AttendanceEvent | None:
    """The event of that id, if logged; its snapshot is written again when its file is missing (the writer died)."""
    doc = ctx.db.attendance.find_one({"_id": event_id})
    if doc is None:
        return None
    event = AttendanceEvent.from_doc(doc)
    if event.snapshot_path and not Path(event.snapshot_path).is_file():
        _write_snapshot(event, snapshot)
    return event


def insert_once(ctx: ServiceContext, doc: Doc) -> None:
    """Insert an event document unless one with its id exists (then it is left as it is)."""
    with suppress(DuplicateKeyError):  # inserted meanwhile by another writer: the same event
        ctx.db.attendance.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)


def _write_snapshot(event: AttendanceEvent, snapshot: bytes | None) -> None:
    if snapshot is not None and event.snapshot_path:
        write_private(Path(event.snapshot_path), snapshot)  # a temporary file beside it, renamed over it


def _settle(ctx: ServiceContext, claim: Doc) -> None:
    """Insert the claim's pending events, then take them out of it."""
    pending: list[Doc] = claim.get("pending") or []
    for doc in pending:
        insert_once(ctx, doc)
    if pending:
        ctx.db.attendance_claims.update_one(
            {"_id": claim["_id"]}, {"$pull": {"pending": {"_id": {"$in": [d["_id"] for d in pending]}}}}
        )


def roll_forward(ctx: ServiceContext, person_id: str | None = None) -> int:
    """Insert every claimed event not yet in `attendance` (of one person, or all): how many were pending."""
    query: dict[str, Any] = {"pending.0": {"$exists": True}}
    if person_id is not None:
        query["person_id"] = person_id
    pending = 0
    for claim in ctx.db.attendance_claims.find(query):
        _settle(ctx, claim)
        pending += len(claim["pending"])
    return pending


def touch_day(
    ctx: ServiceContext,
    person_id: str,
    display_name: str | None,
    source: str,
    day: date,
    first: datetime,
    last: datetime,
) -> None:
    """Widen a person's presence at `source` on `day` to hold [first, last] (one atomic upsert)."""
    update: dict[str, Any] = {
        "$min": {"first_seen": first},
        "$max": {"last_seen": last},
        "$setOnInsert": {"person_id": person_id, "source": source, "day": day.isoformat()},
    }
    if display_name:
        update["$set"] = {"display_name": display_name}
    key = {"_id": f"{person_id}|{source}|{day.isoformat()}"}
    try:
        ctx.db.attendance_presence.update_one(key, update, upsert=True)
    except DuplicateKeyError:  # two first touches at once: the other inserted it; widen that document
        ctx.db.attendance_presence.update_one(key, update, upsert=True)


def presence(
    ctx: ServiceContext, lo: datetime, hi: datetime, person_id: str | None = None, source: str | None = None
) -> list[Presence]:
    """The presence documents with a sighting range that meets [lo, hi)."""
    query: dict[str, Any] = {"last_seen": {"$gte": lo}, "first_seen": {"$lt": hi}}
    if person_id:
        query["person_id"] = person_id
    if source:
        query["source"] = source
    return [Presence.from_doc(d) for d in ctx.db.attendance_presence.find(query)]


def forget_person(ctx: ServiceContext, person_id: str) -> None:
    """A person's claims (with the event copies in them) and presence documents, deleted (erasure)."""
    ctx.db.attendance_claims.delete_many({"person_id": person_id})
    ctx.db.attendance_presence.delete_many({"person_id": person_id})
