"""Attendance: recognised or unknown faces seen by a source, logged once per (person, source) per cooldown, and
each known person's arrival and departure per local day.

The cooldown is a claim in MongoDB, taken atomically (services.storage.attendance_writes): two scripts or workers on
one camera cannot both log a person, a restart keeps it, and a redelivered sighting is the event logged before.
Event ids derive from what was seen: a Sighting's key, or a frame's (person, source, time); snapshot files are named
by the event id and written atomically, so a retry rewrites the same file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal

from model.image_io import encode_image
from model.types import ImageArray
from services.context import ServiceContext
from services.storage import attendance_writes as writes
from services.storage.records import AttendanceEvent, as_utc, utcnow

SNAPSHOT_QUALITY = 90  # JPEG quality of the attendance snapshots
EVENT_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "facereg/attendance-event")  # the namespace of event ids


@dataclass(frozen=True, slots=True)
class Sighting:
    """A track whose identity is decided: the realtime session's request to log it."""

    key: str  # idempotency key, unique per track: f"{source}/{run_id}/{track_id}"
    person_id: str | None  # None: unknown
    display_name: str | None
    source: str
    gallery: str
    time: datetime  # when decided (the frame time of the deciding frame)
    similarity: float
    run_id: str
    track_id: int
    first_frame: int
    last_frame: int
    first_seen: datetime
    last_seen: datetime
    snapshot: ImageArray | None = None  # RGB, the best face with context
    embeddings: tuple[tuple[float, ...], ...] | None = None  # unknown tracks only


@dataclass(frozen=True, slots=True)
class LogOutcome:
    status: Literal["logged", "cooldown"]  # "logged" also when the same key was logged before (a redelivery)
    event: AttendanceEvent | None  # the (new or earlier) event when logged


def event_id(key: str) -> str:
    """The id of the event a sighting key logs: the same key, the same event."""
    return uuid.uuid5(EVENT_IDS, key).hex


def record_sighting(ctx: ServiceContext, sighting: Sighting, cooldown_s: float | None = None) -> LogOutcome:
    """Log a decided track. A known person: one event per (person, source) per cooldown (default: the settings'),
    and their presence that day widened to the track's first and last sighting, logged or not. An unknown track:
    one event per key, no cooldown, with its embeddings. The same key again returns the event logged before."""
    s = sighting
    eid, when, jpeg = event_id(s.key), _ms(s.time), _jpeg(s.snapshot)
    event = AttendanceEvent(
        eid,
        s.person_id,
        s.display_name,
        s.source,
        when,
        float(s.similarity),
        _snapshot_path(ctx, s.source, when, eid) if jpeg else None,
        gallery=s.gallery,
        run_id=s.run_id,
        track_id=s.track_id,
        first_frame=s.first_frame,
        last_frame=s.last_frame,
        first_seen=_ms(s.first_seen),
        last_seen=_ms(s.last_seen),
        embeddings=[[float(x) for x in e] for e in s.embeddings] if s.person_id is None and s.embeddings else None,
    )
    if s.person_id is None:
        return LogOutcome("logged", writes.log_unique(ctx, event, jpeg))
    touch_presence(ctx, s.person_id, s.display_name, s.source, s.first_seen, s.last_seen)
    logged = writes.log_once(ctx, writes.claim_id(s.person_id, s.source), event, _cooldown(ctx, cooldown_s), jpeg)
    return LogOutcome("cooldown", None) if logged is None else LogOutcome("logged", logged)


def record_event(
    ctx: ServiceContext,
    person_id: str | None,
    display_name: str | None,
    source: str,
    similarity: float,
    snapshot: ImageArray | None = None,
    when: datetime | None = None,
    cooldown_s: float | None = None,
) -> AttendanceEvent | None:
    """One face of one frame (no track): store an event, or None when the same person (or an unknown face) was
    logged at this source within the cooldown. Unknown faces share one cooldown per source. A known person's
    presence is widened to `when` either way. The same (person, source, time) again is the same event."""
    when = _ms(when) if when else utcnow()
    if person_id is not None:
        touch_presence(ctx, person_id, display_name, source, when, when)
    eid = event_id(f"frame/{source}/{person_id or writes.UNKNOWN}/{when.isoformat()}")
    jpeg = _jpeg(snapshot)
    path = _snapshot_path(ctx, source, when, eid) if jpeg else None
    event = AttendanceEvent(eid, person_id, display_name, source, when, float(similarity), path)
    return writes.log_once(ctx, writes.claim_id(person_id, source), event, _cooldown(ctx, cooldown_s), jpeg)


def touch_presence(
    ctx: ServiceContext, person_id: str, display_name: str | None, source: str, first: datetime, last: datetime
) -> None:
    """Arrival and departure: a person's first and last sighting at `source` on each day (the site's zone), widened
    to hold `first` and `last` ($min/$max upserts: atomic, in any order). A track that spans midnight counts its
    first sighting on its day and its last on its day."""
    first, last = _ms(first), _ms(last)
    if last < first:
        raise ValueError(f"the last sighting ({last.isoformat()}) is before the first ({first.isoformat()})")
    zone = site_tz(ctx)
    days: dict[date, tuple[datetime, datetime]] = {}
    for t in (first, last):
        lo, hi = days.get(local_day(t, zone), (t, t))
        days[local_day(t, zone)] = (min(lo, t), max(hi, t))
    for day, (lo, hi) in days.items():
        writes.touch_day(ctx, person_id, display_name, source, day, lo, hi)


def _cooldown(ctx: ServiceContext, cooldown_s: float | None) -> float:
    return ctx.settings.attendance_cooldown_s if cooldown_s is None else float(cooldown_s)


def _ms(when: datetime) -> datetime:
    """UTC at millisecond precision (what BSON keeps): an event reads back equal to the one logged."""
    t = as_utc(when).astimezone(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _jpeg(image: ImageArray | None) -> bytes | None:
    return encode_image(image, ".jpg", SNAPSHOT_QUALITY) if image is not None else None


def _snapshot_path(ctx: ServiceContext, source: str, when: datetime, eid: str) -> str:
    """Where an event's snapshot lives: named by the event id, so a retry writes the same file."""
    return str(ctx.settings.data_dir / "snapshots" / _safe(source) / when.strftime("%Y-%m-%d") / f"{eid}.jpg")


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60] or "source"


# Days are the site's days (settings.timezone); times are stored in UTC. Every function takes the zone from
# ctx.settings unless given `tz`, and "now" from the clock unless given `now`.


def site_tz(ctx: ServiceContext, tz: tzinfo | None = None) -> tzinfo:
    """`tz`, else the site's time zone."""
    return tz if tz is not None else ctx.settings.tz


def local_day(when: datetime, tz: tzinfo) -> date:
    """The day `when` (UTC if naive) falls on in `tz`."""
    return as_utc(when).astimezone(tz).date()


def site_today(ctx: ServiceContext, now: datetime | None = None, tz: tzinfo | None = None) -> date:
    """Today at the site: the day `now` (default: the clock) falls on in its time zone."""
    return local_day(now if now is not None else utcnow(), site_tz(ctx, tz))


def day_range(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC times [from, to) that cover the days `start` to `end` inclusive in `tz`: from local midnight to
    local midnight, each placed in the zone on its own day, so a DST day has its 23 or 25 hours."""
    return _midnight(start, tz), _midnight(end + timedelta(days=1), tz)


def _midnight(d: date, tz: tzinfo) -> datetime:
    # A midnight that does not exist (a DST gap at 00:00) takes the offset before the gap: the day's first instant.
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def events(
    ctx: ServiceContext,
    start: date,
    end: date,
    person_id: str | None = None,
    source: str | None = None,
    unknown_only: bool = False,
    tz: tzinfo | None = None,
) -> list[AttendanceEvent]:
    """Events from `start` to `end` inclusive (days in the site's zone, or `tz`), newest first; times in UTC. Events
    claimed by a writer that died before inserting them are rolled forward first."""
    writes.roll_forward(ctx)
    lo, hi = day_range(start, end, site_tz(ctx, tz))
    query: dict[str, Any] = {"time": {"$gte": lo, "$lt": hi}}
    if person_id:
        query["person_id"] = person_id
    if unknown_only:
        query["person_id"] = None
        query["erased"] = {"$ne": True}
    if source:
        query["source"] = source
    return [AttendanceEvent.from_doc(d) for d in ctx.db.attendance.find(query).sort("time", -1)]


@dataclass(frozen=True, slots=True)
class DailyPresence:
    day: date  # in the report's time zone
    person_id: str
    display_name: str
    first_seen: datetime  # aware, in the report's time zone: the arrival
    last_seen: datetime  # the departure
    count: int  # events logged that day (0: seen only within the cooldown of an earlier event)


def daily_report(
    ctx: ServiceContext,
    start: date,
    end: date,
    source: str | None = None,
    person_id: str | None = None,
    tz: tzinfo | None = None,
) -> list[DailyPresence]:
    """Per day (in the site's zone, or `tz`) and known person: arrival and departure (the first and last sighting
    that day, local times, at `source` or at any) and how many events were logged. Sightings are the presence
    documents' first and last (kept per day of the site's zone) and the events' times."""
    zone = site_tz(ctx, tz)
    lo, hi = day_range(start, end, zone)
    rows: dict[tuple[date, str], DailyPresence] = {}

    def seen(pid: str, name: str | None, when: datetime, count: int) -> None:
        local = when.astimezone(zone)
        key = (local.date(), pid)
        cur = rows.get(key)
        rows[key] = (
            DailyPresence(key[0], pid, name or "", local, local, count)
            if cur is None
            else replace(
                cur,
                display_name=cur.display_name or name or "",
                first_seen=min(cur.first_seen, local),
                last_seen=max(cur.last_seen, local),
                count=cur.count + count,
            )
        )

    for e in events(ctx, start, end, person_id=person_id, source=source, tz=zone):  # newest first: the latest names
        if e.person_id is not None:
            seen(e.person_id, e.display_name, e.time, 1)
    for p in writes.presence(ctx, lo, hi, person_id, source):
        for t in (p.first_seen, p.last_seen):
            if lo <= t < hi:
                seen(p.person_id, p.display_name, t, 0)
    return sorted(rows.values(), key=lambda r: (r.day, r.display_name))


def sources(ctx: ServiceContext) -> list[str]:
    """Every camera or stream name that has logged an event."""
    return sorted(str(s) for s in ctx.db.attendance.distinct("source"))
